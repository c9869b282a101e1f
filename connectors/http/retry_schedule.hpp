// The retry schedule of webhook delivery: the delay before each attempt, with jitter.
#pragma once

#include <chrono>
#include <random>
#include <string_view>
#include <vector>

#include "rill/error.hpp"

namespace rill::http {

/// "250ms", "5s", "5m", "2h" or a bare number of milliseconds.
[[nodiscard]] Result<std::chrono::milliseconds> parse_duration(std::string_view text);

/// delays[i] is the wait before attempt i + 1 (delays[0] is normally 0: at once);
/// the message is dead-lettered after delays.size() failed attempts.
struct RetrySchedule {
  std::vector<std::chrono::milliseconds> delays;
  double jitter = 0.2;  ///< each non-zero delay is scaled by a uniform factor in [1 - jitter, 1 + jitter]

  /// Svix's default: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
  [[nodiscard]] static RetrySchedule standard();
  /// A comma-separated list of durations, e.g. "0,5s,5m,30m,2h,5h,10h,10h".
  [[nodiscard]] static Result<RetrySchedule> parse(std::string_view text);
  /// The jittered wait before attempt `attempt` (1-based).
  [[nodiscard]] std::chrono::milliseconds delay_before(std::size_t attempt, std::mt19937_64& rng) const;
};

}  // namespace rill::http
