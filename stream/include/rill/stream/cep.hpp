// CepOperator: complex event processing over each key's events in event-time order, with
// SQL:2016 MATCH_RECOGNIZE semantics (greedy/reluctant quantifiers, AFTER MATCH SKIP,
// WITHIN), ONE ROW / ALL ROWS PER MATCH, late-event policies and checkpoints.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "rill/error.hpp"
#include "rill/stream/cep_pattern.hpp"
#include "rill/stream/types.hpp"
#include "rill/stream/watermark.hpp"
#include "rill/stream/window_operator.hpp"

namespace rill::stream::cep {

/// A complex event: one match with every event it is made of, in event-time order.
struct Match {
  std::string key;                ///< the partition
  std::uint64_t number = 0;       ///< MATCH_NUMBER(): 1, 2, ... per key
  std::vector<Event> events;      ///< the constituent events (source, sequence, payload ...)
  std::vector<std::string> vars;  ///< CLASSIFIER() of each event
  /// The match as measures see it (PREV reaches only rows of the match). Valid while the
  /// Match lives unchanged.
  [[nodiscard]] MatchView view() const noexcept { return view(events.size()); }
  /// The match's first `n` rows (ALL ROWS PER MATCH's running view).
  [[nodiscard]] MatchView view(std::size_t n) const noexcept { return {events.data(), vars.data(), n, number}; }
};

/// A measure's value: none (SQL NULL), a number, an integer or a string.
using Value = std::variant<std::monostate, double, std::int64_t, std::string>;
/// A MEASURES expression, computed from the match.
using Measure = std::function<Value(const MatchView& match)>;

/// ONE ROW PER MATCH or ALL ROWS PER MATCH.
enum class RowsPerMatch : std::uint8_t {
  one,  ///< one row per match; measures see the whole match (FINAL)
  all,  ///< one row per event of the match; measures see the match up to it (RUNNING)
};

/// One output row.
struct MatchRow {
  std::string key;
  std::uint64_t match_number = 0;
  std::vector<Value> measures;    ///< in the order of Options::measures
  const Event* event = nullptr;   ///< ALL ROWS: the row's event (valid during the call)
  std::string_view classifier{};  ///< ALL ROWS: its variable
};

/// A CEP operator's settings; fill with designated initializers.
struct Options {
  WatermarkOptions watermark{};
  /// Events behind the watermark on arrival: dropped and counted, or side output.
  LatePolicy late = LatePolicy::drop;
  RowsPerMatch rows_per_match = RowsPerMatch::one;
  /// MEASURES name -> expression, in output order.
  std::vector<std::pair<std::string, Measure>> measures{};
  /// Rows kept before a match attempt's first row for MatchView::prev.
  std::size_t prev_rows = 1;
  /// State bound per key: when a key holds more rows than this (a partial match that
  /// neither ends nor fails), its oldest attempt is abandoned (Stats::overflow).
  std::size_t max_rows_per_key = 100000;
  /// State bound overall: events waiting for the watermark beyond this are dropped on
  /// arrival (Stats::overflow_dropped).
  std::size_t max_buffered = 1000000;
};

/// Where results go. Called on the thread that calls process()/tick()/finish().
struct Output {
  std::function<void(const Match&)> match{};   ///< each match, the complex event
  std::function<void(const MatchRow&)> row{};  ///< its rows per Options::rows_per_match
  std::function<void(const Event&)> late{};    ///< LatePolicy::side_output
};

/// Counters; read from the operator's thread.
struct Stats {
  std::uint64_t events = 0;            ///< events processed
  std::uint64_t late_dropped = 0;      ///< behind the watermark, dropped
  std::uint64_t late_side = 0;         ///< behind the watermark, side output
  std::uint64_t matches = 0;           ///< matches found
  std::uint64_t rows = 0;              ///< output rows
  std::uint64_t expired = 0;           ///< partial matches discarded by WITHIN
  std::uint64_t overflow = 0;          ///< attempts given up: max_rows_per_key, or a group repeated > 1000 times
  std::uint64_t overflow_dropped = 0;  ///< events dropped at max_buffered
  std::size_t buffered = 0;            ///< events waiting for the watermark
  std::size_t retained = 0;            ///< rows held by keys' match attempts
  std::size_t keys = 0;                ///< keys holding rows
};

namespace detail {
class Engine;
}

/// Matches a Pattern over each key's events in event-time order. An event is matched once
/// the watermark passes it (time < W), so events arriving out of order before that are put
/// in their place. Move-only; not thread-safe (one thread feeds it).
class Operator {
 public:
  /// Checks the pattern (variables named, quantifiers min <= max, max > 0, skip_to a
  /// variable, conditions for known variables only) and options: invalid_argument otherwise.
  [[nodiscard]] static Result<Operator> create(Pattern pattern, Options options, Output output);
  Operator(Operator&&) noexcept;
  Operator& operator=(Operator&&) noexcept;
  ~Operator();

  /// Takes one event (in arrival order), advances the watermark and matches what it passed.
  void process(const Event& event);
  /// Re-evaluates the watermark against the clock (idle sources) and matches.
  void tick();
  /// End of input: every buffered event is matched; partial matches end.
  void finish();

  /// Writes the whole state (buffered events, each key's rows and attempt, watermarks,
  /// counters) and `inputs` to `path` atomically (temporary file, fsync, rename).
  [[nodiscard]] Result<void> checkpoint(const std::string& path,
                                        const std::map<std::uint64_t, std::uint64_t>& inputs) const;
  /// Loads a checkpoint into this operator, which must be fresh and have the same pattern,
  /// skip, within, rows per match and prev_rows: invalid_argument, incompatible, corrupt
  /// (a damaged file, state left empty), io_error. Returns the positions saved with it
  /// (outputs = matches + rows emitted up to the checkpoint).
  [[nodiscard]] Result<Positions> restore(const std::string& path);
  /// The same from checkpoint bytes already in memory.
  [[nodiscard]] Result<Positions> restore_bytes(std::string_view bytes);

  [[nodiscard]] TimeMs watermark() const noexcept;
  [[nodiscard]] Stats stats() const noexcept;

 private:
  Operator() = default;
  std::unique_ptr<detail::Engine> m_engine;  // behind a pointer: callbacks refer to it
};

}  // namespace rill::stream::cep
