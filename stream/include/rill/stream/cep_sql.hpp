// MATCH_RECOGNIZE, as the SQL parser's AST gives it (rill/sql.hpp), compiled into a CEP
// pattern, its DEFINE conditions and MEASURES. Library rill::stream_cep_sql (built with the
// SQL parser, RILL_WITH_SQL); not part of <rill/stream.hpp>.
//
// Expressions (DEFINE and MEASURES) are numeric: columns are Event::values by name, booleans
// are 1/0, NULL is an absent value (SQL's three-valued AND/OR/NOT). Supported: numbers,
// TRUE/FALSE/NULL, column references `col` and `VAR.col`, + - * / %, = <> != < <= > >=,
// AND OR NOT, IS [NOT] NULL, [NOT] BETWEEN, [NOT] IN (...), PREV(col [, n]) of the current
// row, FIRST/LAST(VAR.col [, n]) and FIRST/LAST(col [, n]) over the match, SUM/AVG/MIN/MAX
// (VAR.col or col), COUNT(*), COUNT(VAR.col), and in MEASURES MATCH_NUMBER() and
// CLASSIFIER() (as the whole measure). Not supported (an error with its line:column):
// strings and string functions, CASE, CAST, NEXT, PREV of another variable's row, nested
// navigation, FINAL/RUNNING keywords (ONE ROW PER MATCH measures are FINAL, ALL ROWS PER
// MATCH ones RUNNING), SUBSET, PERMUTE, {- -} exclusion and anchors.
#pragma once

#include <string>
#include <vector>

#include "rill/error.hpp"
#include "rill/sql.hpp"
#include "rill/stream/cep.hpp"

namespace rill::stream::cep {

/// A MATCH_RECOGNIZE clause ready for cep::Operator::create.
struct SqlPattern {
  Pattern pattern;  ///< PATTERN, DEFINE, WITHIN, AFTER MATCH SKIP
  RowsPerMatch rows_per_match = RowsPerMatch::one;
  std::vector<std::pair<std::string, Measure>> measures;  ///< MEASURES, in order
  std::vector<std::string> partition_by;                  ///< PARTITION BY columns: the caller makes Event::key
  std::string order_by;                                   ///< ORDER BY column: the caller makes Event::time
  /// The largest PREV offset used (at least 1): set Options::prev_rows to it so PREV reaches
  /// as far before a match as SQL's does.
  std::size_t prev_rows = 1;
};

/// Compiles a Kind::match_recognize node. `columns[i]` names Event::values[i]. Errors:
/// invalid_argument with "line:column: message" (unknown column or variable, an
/// unsupported construct, a bad quantifier or interval).
[[nodiscard]] Result<SqlPattern> compile_match_recognize(const sql::Node& match_recognize,
                                                         const std::vector<std::string>& columns);

}  // namespace rill::stream::cep
