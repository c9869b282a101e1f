// Internal: the state behind cep::Operator: events waiting for the watermark, each key's
// rows and current match attempt, and what fires when the watermark advances.
#pragma once

#include <deque>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>

#include "rill/stream/cep.hpp"
#include "stream/cep_matcher.hpp"

namespace rill::stream::detail {
class StateWriter;
class StateReader;
}  // namespace rill::stream::detail

namespace rill::stream::cep::detail {

/// Event-time order: time, then source, then sequence (the same whatever the arrival order).
using Order = std::tuple<TimeMs, std::uint64_t, std::uint64_t>;
[[nodiscard]] inline Order order_of(const Event& e) noexcept {
  return {e.time, e.source, e.sequence};
}

/// One key's rows in event-time order: [0, cursor) kept for PREV, [cursor, end) the rows
/// of the attempt that starts at `cursor`.
struct Partition {
  std::deque<Event> rows;
  std::size_t cursor = 0;
  std::uint64_t matches = 0;  ///< MATCH_NUMBER of the last match
  bool pending = false;       ///< the attempt at cursor waits for more rows
  TimeMs armed = min_time;    ///< the WITHIN deadline registered for it (not registered twice)
};

class Engine {
 public:
  Engine(Compiled pattern, Options options, Output output);

  void process(const Event& event);
  void tick();
  void finish();
  [[nodiscard]] TimeMs watermark() const noexcept { return m_advanced; }
  [[nodiscard]] Stats stats() const noexcept;

  [[nodiscard]] std::string checkpoint_bytes(const std::map<std::uint64_t, std::uint64_t>& inputs) const;
  [[nodiscard]] Result<Positions> restore_bytes(std::string_view bytes);

 private:
  void advance(TimeMs to, bool end_of_input);
  void evaluate(const std::string& key, Partition& p, bool end_of_input);
  void emit(const std::string& key, Partition& p, const Attempt& a);
  [[nodiscard]] std::size_t next_start(const Attempt& a) const;
  void write_fingerprint(rill::stream::detail::StateWriter& out) const;
  bool load_state(rill::stream::detail::StateReader& in);
  void reset();

  Compiled m_pattern;
  Options m_options;
  Output m_output;
  Stats m_stats;
  WatermarkTracker m_tracker;
  TimeMs m_advanced = min_time;          // events before this have been released to their keys
  std::multimap<Order, Event> m_buffer;  // waiting for the watermark
  std::unordered_map<std::string, Partition> m_keys;
  std::multimap<TimeMs, std::string> m_deadlines;  // WITHIN: when a pending attempt expires
  std::size_t m_retained = 0;
};

}  // namespace rill::stream::cep::detail
