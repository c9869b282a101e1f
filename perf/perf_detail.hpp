#pragma once
// Helpers shared by the perf kit's sources; not part of the public interface.
#include "perf_kit.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

namespace rill::perf::detail {

using Clock = std::chrono::steady_clock;

inline const char* placement_name(Placement p) {
  switch (p) {
    case Placement::cross: return "cross";
    case Placement::same: return "same";
    case Placement::none: return "none";
  }
  return "none";
}

inline const char* idle_name(Idle i) { return i == Idle::spin ? "spin" : "block"; }

inline std::chrono::milliseconds step_timeout(const PerfOptions& o) {
  return std::chrono::milliseconds(std::max(o.step_timeout_ms, 1));
}

// How long a throughput receiver may still need after the sender has queued its last
// message: a fast sender can run far ahead of the receiver (HWM is unlimited), so
// allow draining the whole stream at 50k msgs/s on top of one step timeout.
inline std::chrono::milliseconds drain_budget(const PerfOptions& o) {
  const auto drain_ms = static_cast<long long>(o.throughput_count / 50);
  return step_timeout(o) + std::chrono::milliseconds(drain_ms);
}

// a / b, or NaN when it would be meaningless (reported as null in JSON).
inline double ratio(double a, double b) {
  if (!std::isfinite(a) || !std::isfinite(b) || b <= 0) return std::numeric_limits<double>::quiet_NaN();
  return a / b;
}

}  // namespace rill::perf::detail
