// The values that flow through a stream job: input events and changelog rows.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace rill::stream {

/// Event time in milliseconds since the Unix epoch.
using TimeMs = std::int64_t;
inline constexpr TimeMs min_time = std::numeric_limits<TimeMs>::min();
inline constexpr TimeMs max_time = std::numeric_limits<TimeMs>::max();

/// One input event: a keyed numeric value at an event time, from one source.
struct Event {
  std::string key;             ///< what windows and aggregates are grouped by
  double value = 0;            ///< what the aggregate folds
  TimeMs time = 0;             ///< event time (ms)
  std::uint64_t source = 0;    ///< the source (a rill publisher id): its own watermark
  std::uint64_t sequence = 0;  ///< the source's sequence; breaks ties between equal times
};

/// The changelog kind of an output row, as in Flink's RowKind.
enum class RowKind : std::uint8_t {
  insert,         ///< +I: a new row
  update_before,  ///< -U: retracts a row that an update follows
  update_after,   ///< +U: the new content of a retracted row
  remove,         ///< -D: retracts a row with no replacement (a session merged away)
};

/// "+I", "-U", "+U" or "-D".
[[nodiscard]] constexpr std::string_view to_string(RowKind k) noexcept {
  switch (k) {
    case RowKind::insert: return "+I";
    case RowKind::update_before: return "-U";
    case RowKind::update_after: return "+U";
    case RowKind::remove: return "-D";
  }
  return "?";
}

/// One output row: the aggregate of one key's window.
struct Row {
  RowKind kind = RowKind::insert;
  std::string key;
  TimeMs start = 0;         ///< window start (inclusive)
  TimeMs end = 0;           ///< window end (exclusive)
  double value = 0;         ///< the aggregate's result
  std::uint64_t count = 0;  ///< events in the window
  /// The accumulator's full result when one double is not enough (Accumulator::detail: the
  /// several aggregates of a SQL row); empty otherwise.
  std::string detail;
};

}  // namespace rill::stream
