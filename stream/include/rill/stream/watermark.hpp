// Watermarks per source: bounded out-of-orderness, idle sources, and the operator's minimum.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "rill/stream/types.hpp"

namespace rill::stream {

/// Processing time in milliseconds (a monotonic clock); injectable for tests.
using Clock = std::function<std::int64_t()>;

/// The steady clock, in milliseconds.
[[nodiscard]] std::int64_t steady_now_ms() noexcept;

/// How watermarks are made; fill with designated initializers.
struct WatermarkOptions {
  /// Bounded out-of-orderness: a source's events may arrive up to this far (event time)
  /// behind the latest one it sent. Its watermark is its latest event time minus this.
  std::chrono::milliseconds out_of_orderness{0};
  /// A source that sent nothing for this long (processing time) stops holding the watermark
  /// back until it speaks again. 0: sources never go idle.
  std::chrono::milliseconds idle_after{0};
  /// When every source has been idle this long, the watermark follows the wall clock: the
  /// latest event time seen plus the wall time since the last event, so windows close in a
  /// quiet stream. 0: off (a quiet stream holds its windows open).
  std::chrono::milliseconds close_when_all_idle{0};
  /// The watermark stays at min_time until this many sources have sent an event, so a
  /// source that starts a little later is not behind a watermark made without it.
  std::size_t min_sources = 0;
  /// Processing time (default: steady_now_ms).
  Clock clock{};
};

/// Tracks each source's latest event time and the combined watermark W, meaning: every
/// event with time < W is expected to have arrived. W never goes back.
/// Not thread-safe: one thread feeds it.
class WatermarkTracker {
 public:
  explicit WatermarkTracker(WatermarkOptions options);

  /// Notes an event of `source` at event time `time` (arriving now).
  void observe(std::uint64_t source, TimeMs time);
  /// Recomputes W from the sources and the clock; returns it.
  TimeMs update();
  /// The watermark as of the last update() (min_time before any event).
  [[nodiscard]] TimeMs watermark() const noexcept { return m_watermark; }
  /// Moves W to `to` if that is ahead (end of input: max_time).
  void advance_to(TimeMs to) noexcept;
  /// Sources currently holding the watermark (not idle).
  [[nodiscard]] std::size_t active_sources() const noexcept { return m_active; }
  /// Sources ever seen.
  [[nodiscard]] std::size_t sources() const noexcept { return m_sources.size(); }
  /// Each source's latest event time (for a checkpoint).
  [[nodiscard]] std::vector<std::pair<std::uint64_t, TimeMs>> source_times() const;
  /// Restores a source from a checkpoint (it counts as having spoken now) and the watermark.
  void restore(std::uint64_t source, TimeMs latest);
  /// Processing time now, from the options' clock.
  [[nodiscard]] std::int64_t now() const { return m_options.clock(); }

 private:
  struct Source {
    TimeMs max_time = min_time;
    std::int64_t last_seen = 0;  // processing time of its last event
  };
  WatermarkOptions m_options;
  std::unordered_map<std::uint64_t, Source> m_sources;
  TimeMs m_watermark = min_time;
  std::size_t m_active = 0;
};

}  // namespace rill::stream
