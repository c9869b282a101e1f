// CEP patterns: variables with quantifiers, sequences, alternations and groups, DEFINE
// conditions that see the match so far, WITHIN and the AFTER MATCH SKIP strategy, with the
// semantics of SQL:2016 MATCH_RECOGNIZE (as Flink implements it).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rill/stream/types.hpp"

namespace rill::stream::cep {

/// One input event of a CEP job: a partition key, an event time, where it came from, the
/// numbers the conditions read, and the payload it carries to the match unchanged.
struct Event {
  std::string key;               ///< partition (PARTITION BY): each key is matched on its own
  TimeMs time = 0;               ///< event time (ms): the order rows are matched in
  std::uint64_t source = 0;      ///< the source (a rill publisher id): its own watermark
  std::uint64_t sequence = 0;    ///< the source's sequence; with `source` breaks time ties
  std::vector<double> values{};  ///< the event's numeric columns, read by conditions/measures
  std::string payload{};         ///< the original bytes (e.g. the message's JSON)
};

/// How many rows a pattern element takes: {min, max}, greedy (as many as possible first)
/// or reluctant (as few as possible first).
struct Quantifier {
  static constexpr std::uint32_t unbounded = std::numeric_limits<std::uint32_t>::max();
  std::uint32_t min = 1;
  std::uint32_t max = 1;
  bool greedy = true;
};

/// A pattern expression: a variable, a sequence or an alternation, each with a quantifier.
/// Build with var/seq/alt and the quantifier methods: seq({var("A"), var("B").plus()}).
struct PatternNode {
  enum class Kind : std::uint8_t { var, seq, alt };
  Kind kind = Kind::var;
  std::string name;                   ///< var: the variable's name
  std::vector<PatternNode> children;  ///< seq, alt
  Quantifier q{};

  PatternNode star() const& { return quantified(0, Quantifier::unbounded); }                     ///< `*`
  PatternNode plus() const& { return quantified(1, Quantifier::unbounded); }                     ///< `+`
  PatternNode optional() const& { return quantified(0, 1); }                                     ///< `?`
  PatternNode times(std::uint32_t n) const& { return quantified(n, n); }                         ///< `{n}`
  PatternNode at_least(std::uint32_t n) const& { return quantified(n, Quantifier::unbounded); }  ///< `{n,}`
  PatternNode between(std::uint32_t n, std::uint32_t m) const& { return quantified(n, m); }      ///< `{n,m}`
  /// The same quantifier, reluctant (`*?`, `+?`, `??`, `{n,m}?`).
  PatternNode reluctant() const& {
    PatternNode p = *this;
    p.q.greedy = false;
    return p;
  }

 private:
  PatternNode quantified(std::uint32_t n, std::uint32_t m) const& {
    PatternNode p = *this;
    p.q = {.min = n, .max = m, .greedy = true};
    return p;
  }
};

/// A pattern variable, quantifier {1,1}.
[[nodiscard]] PatternNode var(std::string name);
/// A concatenation (A B C), as a group with quantifier {1,1}.
[[nodiscard]] PatternNode seq(std::vector<PatternNode> parts);
/// An alternation (A | B): the first alternative that leads to a match is preferred.
[[nodiscard]] PatternNode alt(std::vector<PatternNode> choices);
/// The pattern in SQL's PATTERN syntax: "A B+? (C | D){2,3}".
[[nodiscard]] std::string to_string(const PatternNode& node);

/// The match so far as a DEFINE condition or a measure sees it: its rows in order, each
/// with the variable it was classified as. For a condition the last row is the one being
/// tested, classified as the condition's variable (so LAST(A) of A's condition is that row
/// and aggregates over A include it, as in SQL). Valid only during the call.
class MatchView {
 public:
  /// A match attempt: `rows[i]` classified as `names[var_ids[i]]`, for i < size; `before`
  /// (`before_size` rows, oldest first): the partition's rows kept before the match, which
  /// PREV may reach.
  MatchView(const Event* const* rows, const std::uint16_t* var_ids, const std::string* names, std::size_t size,
            const Event* const* before = nullptr, std::size_t before_size = 0) noexcept
      : m_ptrs(rows), m_var_ids(var_ids), m_names(names), m_before(before), m_before_size(before_size), m_size(size) {}
  /// A finished match number `number`: `events[i]` classified as `vars[i]`, for i < size.
  MatchView(const Event* events, const std::string* vars, std::size_t size, std::uint64_t number = 0) noexcept
      : m_events(events), m_names(vars), m_size(size), m_number(number) {}

  /// MATCH_NUMBER() of a finished match (1, 2, ... per key); 0 while a condition runs.
  [[nodiscard]] std::uint64_t match_number() const noexcept { return m_number; }
  /// Rows in the match (so far).
  [[nodiscard]] std::size_t size() const noexcept { return m_size; }
  /// The i-th row of the match.
  [[nodiscard]] const Event& row(std::size_t i) const noexcept { return m_ptrs ? *m_ptrs[i] : m_events[i]; }
  /// The variable the i-th row was classified as (CLASSIFIER()).
  [[nodiscard]] std::string_view classifier(std::size_t i) const noexcept {
    return m_var_ids ? m_names[m_var_ids[i]] : m_names[i];
  }
  /// The last row: for a condition, the row being tested.
  [[nodiscard]] const Event& current() const noexcept { return row(m_size - 1); }
  /// PREV(current, n): the partition's row n rows before the current one (it may precede
  /// the match's first row for a condition: Options::prev_rows are kept), nullptr if none.
  [[nodiscard]] const Event* prev(std::size_t n = 1) const noexcept;
  /// Rows classified as `var`.
  [[nodiscard]] std::size_t count(std::string_view var) const noexcept;
  /// FIRST(var, n): the n-th row of `var` from its first; nullptr if there are not n+1.
  [[nodiscard]] const Event* first(std::string_view var, std::size_t n = 0) const noexcept;
  /// LAST(var, n): the n-th row of `var` back from its last; nullptr if there are not n+1.
  [[nodiscard]] const Event* last(std::string_view var, std::size_t n = 0) const noexcept;
  /// SUM(var.values[field]) over the rows of `var` (0 without rows; a row without that
  /// field counts as 0).
  [[nodiscard]] double sum(std::string_view var, std::size_t field) const noexcept;
  /// AVG(var.values[field]); nullopt without rows.
  [[nodiscard]] std::optional<double> avg(std::string_view var, std::size_t field) const noexcept;
  /// MIN / MAX(var.values[field]); nullopt without rows.
  [[nodiscard]] std::optional<double> min(std::string_view var, std::size_t field) const noexcept;
  [[nodiscard]] std::optional<double> max(std::string_view var, std::size_t field) const noexcept;

 private:
  const Event* const* m_ptrs = nullptr;
  const Event* m_events = nullptr;
  const std::uint16_t* m_var_ids = nullptr;
  const std::string* m_names = nullptr;
  const Event* const* m_before = nullptr;
  std::size_t m_before_size = 0;
  std::size_t m_size = 0;
  std::uint64_t m_number = 0;
};

/// values[field] of `e`, 0 when `e` is null or has no such field (a missing column).
[[nodiscard]] inline double field(const Event* e, std::size_t i) noexcept {
  return e != nullptr && i < e->values.size() ? e->values[i] : 0.0;
}

/// A DEFINE condition: whether the current row (view.current()) may be the variable.
/// Variables without one match every row. Called on the operator's thread; must be
/// deterministic (a restore replays it).
using Condition = std::function<bool(const MatchView& view)>;

/// Where matching resumes after a match (AFTER MATCH SKIP ...).
enum class Skip : std::uint8_t {
  past_last_row,  ///< the row after the match's last row (the default)
  to_next_row,    ///< the row after the match's first row (overlapping matches)
  to_first,       ///< the first row of variable `skip_to`
  to_last,        ///< the last row of variable `skip_to`
};

/// What to match; fill with designated initializers.
struct Pattern {
  PatternNode root;                           ///< PATTERN (...)
  std::map<std::string, Condition> define{};  ///< DEFINE var AS condition
  /// WITHIN: a match's last row is less than this after its first (event time). Partial
  /// matches that can no longer end in time are discarded (counted in Stats::expired).
  std::optional<std::chrono::milliseconds> within{};
  Skip skip = Skip::past_last_row;
  std::string skip_to{};  ///< Skip::to_first / to_last: the variable
};

}  // namespace rill::stream::cep
