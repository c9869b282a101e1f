// JoinOperator: two keyed inputs joined on equal keys, as a window join, an interval join or a
// regular (unbounded) join with state TTL, over event time and the combined watermark.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "rill/error.hpp"
#include "rill/stream/types.hpp"
#include "rill/stream/watermark.hpp"
#include "rill/stream/window.hpp"
#include "rill/stream/window_operator.hpp"

namespace rill::stream {

namespace detail {
class JoinStore;
class JoinEmitter;
}  // namespace detail

/// Which input of a join an event came in on.
enum class Side : std::uint8_t { left, right };

/// One input record of a join: a key, an opaque payload (JSON text, a FlatBuffer: the join
/// only carries it), an event time and where it came from.
struct JoinEvent {
  std::string key;             ///< what the two inputs are joined on
  std::string payload;         ///< the record; copied into the join's state, which output rows point at
  TimeMs time = 0;             ///< event time (ms)
  std::uint64_t source = 0;    ///< the source (a rill publisher id): its own watermark
  std::uint64_t sequence = 0;  ///< the source's sequence
};

/// One output row of a join: a pair of input records with the same key, or (left outer join)
/// a left record padded with a null right side. A view: its key and records point into the
/// join's state (or the record being processed), valid only during the JoinOutput::row call;
/// copy what you keep.
struct JoinRow {
  RowKind kind = RowKind::insert;  ///< +I, or -D retracting an earlier +I (left outer join)
  std::string_view key{};
  const JoinEvent* left = nullptr;   ///< always set
  const JoinEvent* right = nullptr;  ///< nullptr: the null-padded row of a left outer join
  TimeMs time = 0;                   ///< the row's event time (see JoinKind)
  TimeMs window_start = 0;           ///< window join: the window [start, end); 0 otherwise
  TimeMs window_end = 0;
};

/// The kinds of join a JoinOperator runs.
enum class JoinKind : std::uint8_t {
  /// Rows of both inputs in the same tumbling or hopping window with equal keys; the pairs of
  /// a window are emitted (+I) when the watermark passes its end, then a completeness marker.
  /// Row time: window end - 1.
  window,
  /// left.time in [right.time - lower, right.time + upper] with equal keys; a pair is emitted
  /// (+I) as soon as its second record arrives. State expires by the watermark: a left record
  /// once W > left.time + lower, a right record once W > right.time + upper.
  /// Row time: max(left.time, right.time).
  interval,
  /// Every pair with equal keys (inner join), +I when the second record arrives. Records are
  /// kept until their TTL (event time) runs out, then dropped without any output.
  /// Row time: max(left.time, right.time).
  regular_inner,
  /// As regular_inner, plus: a left record with no match is emitted at once padded with a
  /// null right side (+I); when its first match arrives that row is retracted (-D) before the
  /// matched row (+I). Row time of a null-padded row: left.time.
  regular_left_outer,
};

/// A JoinOperator's settings; fill with designated initializers.
struct JoinOptions {
  JoinKind kind = JoinKind::window;
  /// window: a tumbling or hopping window.
  WindowSpec window = tumbling(std::chrono::seconds(1));
  /// interval: how far a left record may be before (lower) or after (upper) a right one;
  /// lower + upper >= 0 (either may be negative to shift the interval).
  std::chrono::milliseconds lower{0};
  std::chrono::milliseconds upper{0};
  /// regular joins: a record is forgotten once the watermark passes its time + ttl (nothing
  /// is emitted then; later records of the other side no longer see it). 0: kept forever.
  std::chrono::milliseconds ttl{0};
  /// Watermarks: one tracker per input (each with its sources), the join's watermark is the
  /// minimum of the two. An input whose sources are all idle (idle_after) stops holding it.
  WatermarkOptions watermark{};
  /// Late records: window and interval joins, time < W; regular joins with a ttl,
  /// time + ttl < W (already expired on arrival). Regular joins without a ttl take every record.
  LatePolicy late = LatePolicy::drop;
  /// At most this many records held in state (0: no limit), so keys of unbounded
  /// cardinality or a regular join without a ttl cannot grow without bound. Checked before
  /// each record: one that finds the state full is dropped (not joined, not kept) and
  /// counted in stats().over_limit. A window join keeps one copy per window a record is in,
  /// so a hopping window can pass the limit by size/hop - 1 copies.
  std::size_t max_state_records = 0;
};

/// Where a join's results go. Called on the thread that calls process()/tick()/finish().
struct JoinOutput {
  std::function<void(const JoinRow&)> row{};
  /// The join's watermark moved to `watermark` and rows were emitted (window join: every
  /// window ending at or before it is complete). Not sent by the other kinds, whose rows
  /// are final when emitted.
  std::function<void(TimeMs watermark)> watermark{};
  /// LatePolicy::side_output: the late record and its input.
  std::function<void(Side, const JoinEvent&)> late{};
};

/// Counters; read from the operator's thread.
struct JoinStats {
  std::uint64_t left_events = 0;   ///< records processed on the left input
  std::uint64_t right_events = 0;  ///< records processed on the right input
  std::uint64_t late_dropped = 0;  ///< late, dropped
  std::uint64_t late_side = 0;     ///< late, sent to the side output
  std::uint64_t bad_time = 0;      ///< event time outside +-2^60 ms: dropped
  std::uint64_t over_limit = 0;    ///< dropped because the state held max_state_records
  std::uint64_t rows = 0;          ///< rows emitted (every kind)
  std::uint64_t retractions = 0;   ///< -D rows among them
  std::uint64_t markers = 0;       ///< completeness markers emitted
  std::uint64_t expired = 0;       ///< records dropped from state by the watermark (TTL, interval)
  std::size_t state_records = 0;   ///< records held in state now
};

/// One two-input keyed join. Move-only; not thread-safe (one thread feeds both inputs).
class JoinOperator {
 public:
  /// Checks the options (a tumbling/hopping window for a window join, lower + upper >= 0,
  /// durations >= 0): invalid_argument otherwise.
  [[nodiscard]] static Result<JoinOperator> create(JoinOptions options, JoinOutput output);
  JoinOperator(JoinOperator&&) noexcept;
  JoinOperator& operator=(JoinOperator&&) noexcept;
  ~JoinOperator();

  /// Takes one record of `side` (in arrival order), then advances the watermark.
  void process(Side side, const JoinEvent& event);
  /// Re-evaluates both inputs' watermarks against the clock (idle sources) and fires.
  void tick();
  /// End of both inputs: the watermark moves to max_time (every window fires, state empties).
  void finish();

  /// Writes the whole state (records, both inputs' watermarks, counters) and `inputs` to
  /// `path` atomically (temporary file, fsync, rename, fsync of the directory).
  [[nodiscard]] Result<void> checkpoint(const std::string& path,
                                        const std::map<std::uint64_t, std::uint64_t>& inputs) const;
  /// Loads a checkpoint into this operator, which must be fresh and have the same kind,
  /// window, bounds and ttl: invalid_argument, incompatible, corrupt (damaged file; the
  /// operator is left fresh) or io_error. Returns the positions saved with it; outputs =
  /// rows + markers emitted up to the checkpoint (for PublisherSink-style resumption).
  [[nodiscard]] Result<Positions> restore(const std::string& path);
  /// The same from checkpoint bytes already in memory.
  [[nodiscard]] Result<Positions> restore_bytes(std::string_view bytes);

  /// The join's watermark: min of the two inputs' (min_time until both have one).
  [[nodiscard]] TimeMs watermark() const noexcept { return m_advanced; }
  [[nodiscard]] JoinStats stats() const noexcept;
  /// One input's watermark tracker.
  [[nodiscard]] const WatermarkTracker& watermarks(Side side) const noexcept {
    return side == Side::left ? *m_left : *m_right;
  }

 private:
  JoinOperator() = default;
  void make_store();
  TimeMs combined();
  void advance(TimeMs to);
  [[nodiscard]] bool is_late(const JoinEvent& event) const noexcept;

  JoinOptions m_options;
  // Behind pointers so their addresses survive moves: the store refers to them.
  std::unique_ptr<JoinOutput> m_output;
  std::unique_ptr<JoinStats> m_stats;
  std::unique_ptr<WatermarkTracker> m_left;
  std::unique_ptr<WatermarkTracker> m_right;
  std::unique_ptr<detail::JoinEmitter> m_emitter;
  std::unique_ptr<detail::JoinStore> m_store;
  TimeMs m_advanced = min_time;  // the watermark the state has been advanced to
};

/// The JSON payload of a join row: {"key":..,"time":..,"left":<payload>,"right":<payload>|null}
/// plus "window_start"/"window_end" for a window join. Payloads are inserted as they are
/// (they must be JSON values, e.g. the JSON objects read from the inputs).
[[nodiscard]] std::string join_row_json(const JoinRow& row);

}  // namespace rill::stream
