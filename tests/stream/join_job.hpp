// The join settings of join_job and how it reads its one input topic; stream_join_crash_test
// computes its reference with the same settings.
#pragma once

#include <chrono>
#include <optional>

#include "rill/stream.hpp"

inline rill::stream::JoinOptions join_job_options() {
  using namespace std::chrono_literals;
  return {.kind = rill::stream::JoinKind::regular_left_outer, .ttl = 100ms, .watermark = {.out_of_orderness = 20ms}};
}

/// Both inputs on one topic: {"side":"L"|"R","k":..,"ts":..,"n":..}.
inline rill::stream::JoinSourceOptions join_job_source() {
  auto side = rill::stream::json_key("side");
  return {.key = rill::stream::json_key("k"),
          .time = rill::stream::json_time("ts"),
          .side_of = [side](const rill::MessageView& m) -> std::optional<rill::stream::Side> {
            const auto s = side(m);
            if (s == "L") return rill::stream::Side::left;
            if (s == "R") return rill::stream::Side::right;
            return std::nullopt;
          }};
}
