// Internal: the per-kind state behind JoinOperator (window buckets, or keyed records with
// watermark deadlines) and the one place join rows are counted and handed out.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rill/stream/join.hpp"

namespace rill::stream::detail {

class StateWriter;
class StateReader;

/// Event times, sizes and bounds a join takes: |t| < 2^60 ms (36 million years), so sums of
/// a time and a bound never overflow. Records outside it are counted as bad input.
inline constexpr TimeMs time_limit = TimeMs{1} << 60;
[[nodiscard]] inline bool in_time_range(TimeMs t) noexcept {
  return t > -time_limit && t < time_limit;
}

/// Counts and delivers join rows. Owned by the operator; not thread-safe.
class JoinEmitter {
 public:
  JoinEmitter(const JoinOutput& output, JoinStats& stats) : m_out(output), m_stats(stats) {}
  void send(const JoinRow& row) {
    ++m_stats.rows;
    if (row.kind == RowKind::remove) ++m_stats.retractions;
    if (m_out.row) m_out.row(row);
  }
  void expired(std::uint64_t n) noexcept { m_stats.expired += n; }

 private:
  const JoinOutput& m_out;
  JoinStats& m_stats;
};

/// One join kind's state. add() sees records that are not late; advance() is called with
/// each new watermark, in increasing order.
class JoinStore {
 public:
  virtual ~JoinStore() = default;
  /// A record of `side` arrived while the join's watermark is `watermark`.
  virtual void add(Side side, const JoinEvent& event, TimeMs watermark) = 0;
  /// The watermark moved to `watermark`: fires windows, drops expired records. True when a
  /// completeness marker is due (a window closed).
  virtual bool advance(TimeMs watermark) = 0;
  /// Appends the state for a checkpoint.
  virtual void save(StateWriter& out) const = 0;
  /// Replaces the (empty) state from save()'s bytes; false when they do not parse.
  [[nodiscard]] virtual bool load(StateReader& in) = 0;
  /// Records held (each copy in a hopping window counts).
  [[nodiscard]] virtual std::size_t records() const noexcept = 0;
};

[[nodiscard]] std::unique_ptr<JoinStore> make_window_join(const JoinOptions& options, JoinEmitter& emitter);
[[nodiscard]] std::unique_ptr<JoinStore> make_keyed_join(const JoinOptions& options, JoinEmitter& emitter);

/// A record's bytes in a checkpoint (key, payload, time, source, sequence).
void save_event(StateWriter& out, const JoinEvent& e);
/// Reads what save_event wrote; check in.ok() after.
[[nodiscard]] JoinEvent load_event(StateReader& in);
/// Smallest number of bytes save_event writes (for count checks).
inline constexpr std::size_t min_event_bytes = 8 + 8 + 8 + 8 + 8;

}  // namespace rill::stream::detail
