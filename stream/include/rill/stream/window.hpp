// Window kinds: which windows an event of a key belongs to.
#pragma once

#include <chrono>
#include <cstdint>

namespace rill::stream {

/// The kinds of window a WindowOperator can keep.
enum class WindowKind : std::uint8_t {
  tumbling,  ///< fixed, non-overlapping [k*size, (k+1)*size)
  hopping,   ///< fixed size, a new one every `hop`: [k*hop, k*hop + size)
  sliding,   ///< one per event time t of a key: the events in (t - size, t] (rolling aggregates)
  session,   ///< a key's events while the gaps between them stay under `gap`; merges on bridging
  count,     ///< every `count` events of a key, in event-time order
  global,    ///< all of a key's events since the beginning (compact: one accumulator per key)
  cumulate,  ///< within each [k*size, (k+1)*size): [k*size, k*size + j*step) for j = 1..size/step
};

/// A window kind with its sizes; make one with the functions below.
struct WindowSpec {
  WindowKind kind = WindowKind::tumbling;
  std::int64_t size_ms = 0;  ///< tumbling, hopping, sliding, cumulate (the longest window)
  std::int64_t hop_ms = 0;   ///< hopping; cumulate: the step
  std::int64_t gap_ms = 0;   ///< session
  std::uint64_t count = 0;   ///< count
};

/// Tumbling windows of `size`.
[[nodiscard]] inline WindowSpec tumbling(std::chrono::milliseconds size) {
  return {.kind = WindowKind::tumbling, .size_ms = size.count()};
}
/// Hopping windows of `size`, one starting every `hop`.
[[nodiscard]] inline WindowSpec hopping(std::chrono::milliseconds size, std::chrono::milliseconds hop) {
  return {.kind = WindowKind::hopping, .size_ms = size.count(), .hop_ms = hop.count()};
}
/// Cumulating windows: every `step`, the aggregate so far of the current `size`-long period
/// (size a multiple of step).
[[nodiscard]] inline WindowSpec cumulate(std::chrono::milliseconds step, std::chrono::milliseconds size) {
  return {.kind = WindowKind::cumulate, .size_ms = size.count(), .hop_ms = step.count()};
}
/// Sliding (rolling) windows: for each event time t, the events within `size` up to t.
[[nodiscard]] inline WindowSpec sliding(std::chrono::milliseconds size) {
  return {.kind = WindowKind::sliding, .size_ms = size.count()};
}
/// Session windows that close after `gap` without an event of the key.
[[nodiscard]] inline WindowSpec session(std::chrono::milliseconds gap) {
  return {.kind = WindowKind::session, .gap_ms = gap.count()};
}
/// Count windows of `n` events of a key.
[[nodiscard]] inline WindowSpec count_window(std::uint64_t n) { return {.kind = WindowKind::count, .count = n}; }
/// The global window: each key's aggregate over the whole stream.
[[nodiscard]] inline WindowSpec global_window() { return {.kind = WindowKind::global}; }

}  // namespace rill::stream
