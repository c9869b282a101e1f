// Internal: a compiled CEP pattern and the backtracking matcher that finds the preferred
// match starting at one row.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rill/error.hpp"
#include "rill/stream/cep_pattern.hpp"

namespace rill::stream::cep::detail {

/// A pattern node with its variable resolved to an index.
struct Node {
  PatternNode::Kind kind = PatternNode::Kind::var;
  std::uint16_t var = 0;
  Quantifier q{};
  std::vector<Node> children;
};

/// A checked pattern: variables numbered in order of first appearance.
struct Compiled {
  Node root;
  std::vector<std::string> names;     ///< variable index -> name
  std::vector<Condition> conditions;  ///< variable index -> DEFINE (empty: any row)
  std::int64_t within_ms = -1;        ///< < 0: no WITHIN
  Skip skip = Skip::past_last_row;
  std::uint16_t skip_var = 0;  ///< to_first / to_last
  std::string fingerprint;     ///< what a checkpoint must agree with
};

/// start + within, saturating at max_time.
[[nodiscard]] inline TimeMs within_deadline(TimeMs start, std::int64_t within_ms) noexcept {
  return start > max_time - within_ms ? max_time : start + within_ms;
}

/// invalid_argument for an unnamed or unknown variable, min > max, max == 0, an empty
/// sequence or alternation, groups nested deeper than max_pattern_depth, more than 65535
/// variables, a bad skip_to or within <= 0.
[[nodiscard]] Result<Compiled> compile(Pattern pattern);

/// What an attempt at one start row came to.
enum class Outcome : std::uint8_t {
  failed,     ///< no match starts at that row (whatever rows come later)
  matched,    ///< the preferred match; final
  need_more,  ///< the preferred outcome depends on rows not yet available
  too_long,   ///< a quantified group repeated more than max_group_repeats: given up
};

/// Iterations of quantified groups one attempt may nest (each is a level of recursion).
inline constexpr std::size_t max_group_repeats = 1000;
/// How deeply pattern groups may nest.
inline constexpr std::size_t max_pattern_depth = 64;

/// The rows an attempt may use and what is known about the ones to come.
struct Input {
  const Event* const* rows = nullptr;  ///< the attempt's first row onwards, in order
  std::size_t available = 0;
  const Event* const* before = nullptr;  ///< rows kept before it (for PREV), oldest first
  std::size_t before_size = 0;
  bool end_of_input = false;    ///< no row will come after these
  TimeMs watermark = min_time;  ///< rows still to come have time >= this
};

struct Attempt {
  Outcome outcome = Outcome::failed;
  std::vector<std::uint16_t> vars;  ///< matched: each row's variable (the match's length)
  bool within_cut = false;          ///< WITHIN cut at least one path
};

/// Finds the most preferred non-empty match that starts at input.rows[0]: alternatives in
/// order, greedy quantifiers longest first, reluctant shortest first (SQL:2016's order).
[[nodiscard]] Attempt match_at(const Compiled& pattern, const Input& input);

}  // namespace rill::stream::cep::detail
