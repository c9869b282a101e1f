// The operator settings of stream_job; stream_crash_test computes its reference with them.
#pragma once

#include <chrono>

#include "rill/stream.hpp"

inline rill::stream::OperatorOptions job_options() {
  using namespace std::chrono_literals;
  return {.window = rill::stream::tumbling(50ms),
          .aggregate = rill::stream::avg(),
          .watermark = {.out_of_orderness = 20ms},
          .allowed_lateness = 50ms};
}
