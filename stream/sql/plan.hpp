// Internal: compiled expressions and the logical plan of one query (SELECT or INSERT).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rill/sql.hpp"
#include "rill/sql_job.hpp"
#include "rill/stream/window.hpp"

namespace rill::sql::detail {

/// What an expression node does.
enum class Op : std::uint8_t {
  constant,  ///< `value`
  slot,      ///< the row's value at `slot`
  add,
  sub,
  mul,
  div,
  mod,
  concat,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  and_,
  or_,
  not_,
  neg,
  is_null,
  is_not_null,
  in_list,  ///< args[0] IN args[1..]
  like,     ///< args[0] LIKE args[1]
  case_,    ///< args: (cond, result)* then else (a null constant when absent)
  cast,     ///< args[0] to `type`
  abs,
  upper,
  lower,
  char_length,
};

/// A type-checked expression over a row of values (a vector indexed by slot).
struct Expr {
  Op op = Op::constant;
  Type type = Type::null;  ///< the result type (null: the NULL literal)
  Value value{};           ///< Op::constant
  std::size_t slot = 0;    ///< Op::slot
  bool negate = false;     ///< NOT IN, NOT LIKE
  std::vector<Expr> args;
};

/// Evaluates `e` on `row`; SQL's three-valued logic, NULL in NULL out, x / 0 is NULL.
[[nodiscard]] Value eval(const Expr& e, const std::vector<Value>& row);
/// Whether a WHERE/HAVING condition holds (NULL does not).
[[nodiscard]] inline bool holds(const Expr& e, const std::vector<Value>& row) {
  const Value v = eval(e, row);
  return v.type == Type::boolean && v.i != 0;
}

/// An aggregate function of a grouped query.
enum class AggFn : std::uint8_t { count_star, count, count_distinct, sum, min, max, avg };

struct AggSpec {
  AggFn fn = AggFn::count_star;
  Expr arg{};                ///< over the input row (unused for COUNT(*))
  Type type = Type::bigint;  ///< the result's type
};

/// A name visible to expressions: a column of the input or of the grouped row.
struct Visible {
  std::string name;
  Type type = Type::null;
  std::size_t slot = 0;
};

/// The plan of the one query: source -> WHERE -> (window aggregate -> HAVING) -> SELECT list.
struct Plan {
  std::vector<Table> tables;  ///< every CREATE TABLE, in order
  std::size_t source = 0;     ///< index in tables
  std::optional<std::size_t> sink;
  std::optional<Expr> where;  ///< over the source row
  // Windowed aggregation (window set): the grouped row is keys..., window_start, window_end,
  // aggregates...; HAVING and the projection read it.
  std::optional<stream::WindowSpec> window;
  std::vector<std::size_t> keys;  ///< source slots grouped by
  std::vector<Type> key_types;
  std::vector<AggSpec> aggregates;
  std::optional<Expr> having;
  std::vector<Expr> projection;  ///< over the source row, or the grouped row when windowed
  std::vector<Column> columns;   ///< output names and types
};

/// Compile errors carry the AST node's position.
[[nodiscard]] QueryError error_at(const Node& n, std::string message);

/// CREATE TABLE -> Table.
[[nodiscard]] std::expected<Table, QueryError> make_table(const Node& create);
/// A SELECT against the tables of `plan` (already filled): fills the rest of `plan`.
[[nodiscard]] std::expected<void, QueryError> plan_select(const Node& select, Plan& plan);

/// INSERT INTO sink SELECT: plan_select, then the SELECT list checked against the sink's columns.
[[nodiscard]] std::expected<void, QueryError> plan_insert(const Node& insert, Plan& plan);

/// Compiles an expression where only `names` are visible. With `aggregates` non-null, the
/// aggregate calls are allowed: each is added there (its argument compiled against `inputs`)
/// and becomes a slot reference at `agg_base` + its index.
struct Scope {
  const std::vector<Visible>* names = nullptr;
  const std::vector<Visible>* inputs = nullptr;  ///< what aggregate arguments see
  std::vector<AggSpec>* aggregates = nullptr;
  std::size_t agg_base = 0;
  std::string_view clause;  ///< "WHERE", "the SELECT list", ... for messages
};
[[nodiscard]] std::expected<Expr, QueryError> compile_expr(const Node& n, const Scope& scope);

/// Case-insensitive name equality (SQL names here ignore case).
[[nodiscard]] bool same_name(std::string_view a, std::string_view b) noexcept;
/// A column type node (STRING, INT, ...) -> Type.
[[nodiscard]] std::expected<Type, QueryError> column_type(const Node& type);
/// Parses an INTERVAL node to milliseconds.
[[nodiscard]] std::expected<std::int64_t, QueryError> interval_ms(const Node& interval);

}  // namespace rill::sql::detail
