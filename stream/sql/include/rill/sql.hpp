// rill's streaming SQL dialect: the parser from text to an abstract syntax tree. The grammar
// (PEGTL rules) is stream/sql/sql_grammar.hpp; README "Streaming SQL" documents the dialect.
// Planning and execution on the stream engine are not done yet.
#pragma once

#include <cstddef>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace rill::sql {

/// What an AST node is. `text` holds a name, operator, literal or keyword phrase, per kind.
enum class Kind {
  script,           ///< statements
  create_table,     ///< text: table name; columns, watermark, with_options
  column_def,       ///< text: column name; child: type
  type,             ///< text: STRING, INT, BIGINT, DOUBLE, BOOLEAN, TIMESTAMP(3), VARCHAR
  watermark,        ///< text: time column; child: its expression
  with_options,     ///< options
  option,           ///< text: key; child: string value
  insert,           ///< text: sink table; child: select
  select,           ///< text: DISTINCT or empty; select_list, from, where, group_by, having, order_by
  select_list,      ///< items
  item,             ///< expression, optional alias
  star,             ///< * (text empty) or T.* (text T)
  alias,            ///< text: the name
  from,             ///< the first source, then joins
  table,            ///< text: table name
  source,           ///< a table, window_tvf or subquery with match_recognize and/or alias
  subquery,         ///< child: select
  window_tvf,       ///< text: TUMBLE|HOP|SESSION|CUMULATE; table, descriptor, arguments
  descriptor,       ///< text: time column
  join,             ///< text: INNER, LEFT OUTER, ..., CROSS (from a comma); source, optional on
  on,               ///< child: condition
  where,            ///< child: condition
  group_by,         ///< expressions
  having,           ///< child: condition
  order_by,         ///< order_item list
  order_item,       ///< text: ASC, DESC or empty; child: expression
  partition_by,     ///< expressions
  binary,           ///< text: operator (+ - * / % || = <> != < <= > >= AND OR); two children
  unary,            ///< text: - or NOT; one child
  between,          ///< text: NOT or empty; value, low, high
  in_list,          ///< text: NOT or empty; value, then the list
  is_null,          ///< text: NOT or empty; value
  like,             ///< text: NOT or empty; value, pattern
  case_when,        ///< optional operand, when..., optional else_branch
  when,             ///< condition, result
  else_branch,      ///< result
  cast,             ///< expression, type
  call,             ///< text: function name; text DISTINCT is a child distinct; arguments, optional over
  distinct,         ///< DISTINCT inside an aggregate call
  over,             ///< partition_by, order_by, frame
  frame,            ///< text: ROWS or RANGE; frame_bound children
  frame_bound,      ///< text: UNBOUNDED PRECEDING, CURRENT ROW, PRECEDING, FOLLOWING; optional value
  column_ref,       ///< text: name or qualifier.name
  number,           ///< text: the digits
  string,           ///< text: the value, quotes removed and '' unescaped
  boolean,          ///< text: TRUE or FALSE
  null,             ///< NULL
  interval,         ///< text: unit (MILLISECOND..DAY); child: string
  match_recognize,  ///< partition_by, order_by, measures, rows_per_match, after_match, pattern, define
  measures,         ///< measure children
  measure,          ///< text: name; child: expression
  rows_per_match,   ///< text: ONE ROW PER MATCH or ALL ROWS PER MATCH
  after_match,      ///< text: PAST LAST ROW, NEXT ROW, FIRST, LAST or empty (TO var); optional variable
  pattern,          ///< the pattern expression, optional within
  within,           ///< child: interval
  pattern_alt,      ///< alternatives (A | B)
  pattern_seq,      ///< concatenation (A B C)
  quantified,       ///< text: quantifier (* + ? {n,m}, with ? appended when reluctant); child
  pattern_var,      ///< text: variable name
  define,           ///< define_item children
  define_item,      ///< text: variable; child: condition
  identifier,       ///< text: a name (used inside other nodes)
};

/// One node of the tree, with the line and column (1-based, bytes) where its text starts.
struct Node {
  Kind kind = Kind::script;
  std::string text;
  std::size_t line = 0, column = 0;
  std::vector<Node> children;
};

/// Where and why a script does not parse. `column` counts bytes from 1.
struct SyntaxError {
  std::size_t line = 0, column = 0;
  std::string message;
  /// "line:column: message", as rill prints it.
  [[nodiscard]] std::string to_string() const;
};

/// Parses a script of statements separated by ';' into a Kind::script node. Any input is
/// safe: bad or hostile text (deep nesting included) gives a SyntaxError, never a crash.
[[nodiscard]] std::expected<Node, SyntaxError> parse(std::string_view text);

/// The kind's name in dumps: "select", "window_tvf", ...
[[nodiscard]] std::string_view kind_name(Kind kind);
/// The tree as an S-expression without positions: (kind "text" children...), for tests and
/// debugging; `text` is omitted when empty.
[[nodiscard]] std::string dump(const Node& node);

}  // namespace rill::sql
