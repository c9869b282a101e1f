// AST expressions -> type-checked Expr trees: names resolved against a scope, every
// operator's operand types checked, errors at the offending node's line:column.
#include <cerrno>
#include <cstdlib>

#include "stream/sql/plan.hpp"

namespace rill::sql::detail {

namespace {

using Compiled = std::expected<Expr, QueryError>;

bool numeric(Type t) {
  return t == Type::bigint || t == Type::double_ || t == Type::null;
}

Expr constant(Value v) {
  Expr e;
  e.type = v.type;
  e.value = std::move(v);
  return e;
}

Expr node(Op op, Type type, std::vector<Expr> args) {
  Expr e;
  e.op = op;
  e.type = type;
  e.args = std::move(args);
  return e;
}

// The type two branches (CASE results, comparison operands) share, or nullopt.
std::optional<Type> common(Type a, Type b) {
  if (a == Type::null) return b;
  if (b == Type::null || a == b) return a;
  if (numeric(a) && numeric(b)) return Type::double_;
  return std::nullopt;
}

std::string quoted(Type t) {
  return std::string(type_name(t));
}

std::expected<Type, QueryError> sql_type(const Node& type) {
  const std::string& t = type.text;
  if (t == "STRING" || t.starts_with("VARCHAR")) return Type::string;
  if (t == "INT" || t == "INTEGER" || t == "BIGINT") return Type::bigint;
  if (t == "DOUBLE") return Type::double_;
  if (t == "BOOLEAN") return Type::boolean;
  if (t == "TIMESTAMP" || t == "TIMESTAMP(3)") return Type::timestamp;
  return std::unexpected(error_at(type, "type " + t + " is not supported (TIMESTAMP has precision 3 only)"));
}

class Compiler {
 public:
  explicit Compiler(const Scope& scope) : m_scope(scope) {}

  Compiled compile(const Node& n, bool in_aggregate = false) {
    switch (n.kind) {
      case Kind::column_ref:
        return column(n, in_aggregate);
      case Kind::number:
        return number(n);
      case Kind::string:
        return constant(Value{.type = Type::string, .i = 0, .d = 0, .s = n.text});
      case Kind::boolean:
        return constant(Value{.type = Type::boolean, .i = n.text == "TRUE" ? 1 : 0, .d = 0, .s = {}});
      case Kind::null:
        return constant(Value{});
      case Kind::interval: {
        auto ms = interval_ms(n);
        if (!ms) return std::unexpected(ms.error());
        return constant(Value{.type = Type::interval, .i = *ms, .d = 0, .s = {}});
      }
      case Kind::binary:
        return binary(n, in_aggregate);
      case Kind::unary:
        return unary(n, in_aggregate);
      case Kind::between:
        return between(n, in_aggregate);
      case Kind::in_list:
        return in_list(n, in_aggregate);
      case Kind::is_null: {
        auto v = compile(n.children.at(0), in_aggregate);
        if (!v) return v;
        return node(n.text == "NOT" ? Op::is_not_null : Op::is_null, Type::boolean, {std::move(*v)});
      }
      case Kind::like: {
        auto v = operands(n, in_aggregate);
        if (!v) return std::unexpected(v.error());
        for (std::size_t i = 0; i < 2; ++i) {
          if ((*v)[i].type != Type::string && (*v)[i].type != Type::null) {
            return std::unexpected(error_at(n.children[i], "LIKE needs STRING operands, got " + quoted((*v)[i].type)));
          }
        }
        Expr e = node(Op::like, Type::boolean, std::move(*v));
        e.negate = n.text == "NOT";
        return e;
      }
      case Kind::case_when:
        return case_when(n, in_aggregate);
      case Kind::cast: {
        auto v = compile(n.children.at(0), in_aggregate);
        if (!v) return v;
        auto t = sql_type(n.children.at(1));
        if (!t) return std::unexpected(t.error());
        return node(Op::cast, *t, {std::move(*v)});
      }
      case Kind::call:
        return call(n, in_aggregate);
      case Kind::subquery:
        return std::unexpected(error_at(n, "subqueries are not supported"));
      default:
        return std::unexpected(error_at(n, "this expression is not supported here"));
    }
  }

 private:
  std::expected<std::vector<Expr>, QueryError> operands(const Node& n, bool in_aggregate) {
    std::vector<Expr> out;
    for (const auto& c : n.children) {
      auto e = compile(c, in_aggregate);
      if (!e) return std::unexpected(e.error());
      out.push_back(std::move(*e));
    }
    return out;
  }

  Compiled column(const Node& n, bool in_aggregate) {
    std::string_view name = n.text;
    if (const auto dot = name.rfind('.'); dot != std::string_view::npos) name = name.substr(dot + 1);
    const auto* names = in_aggregate ? m_scope.inputs : m_scope.names;
    for (const auto& v : *names) {
      if (same_name(v.name, name)) {
        Expr e;
        e.op = Op::slot;
        e.type = v.type;
        e.slot = v.slot;
        return e;
      }
    }
    if (!in_aggregate && m_scope.inputs != nullptr) {
      for (const auto& v : *m_scope.inputs) {
        if (same_name(v.name, name)) {
          return std::unexpected(error_at(n, "column '" + std::string(name) + "' in " + std::string(m_scope.clause) +
                                                 " must be in GROUP BY or inside an aggregate"));
        }
      }
    }
    return std::unexpected(error_at(n, "unknown column '" + std::string(name) + "'"));
  }

  Compiled number(const Node& n) {
    if (n.text.find('.') == std::string::npos) {
      errno = 0;
      const long long i = std::strtoll(n.text.c_str(), nullptr, 10);
      if (errno == 0) return constant(Value{.type = Type::bigint, .i = i, .d = 0, .s = {}});
    }
    return constant(Value{.type = Type::double_, .i = 0, .d = std::strtod(n.text.c_str(), nullptr), .s = {}});
  }

  Compiled binary(const Node& n, bool in_aggregate) {
    auto v = operands(n, in_aggregate);
    if (!v) return std::unexpected(v.error());
    const Type a = (*v)[0].type, b = (*v)[1].type;
    const std::string& op = n.text;
    const auto mismatch = [&](const std::string& what) {
      return std::unexpected(error_at(n, "'" + op + "' " + what + ", got " + quoted(a) + " and " + quoted(b)));
    };
    if (op == "AND" || op == "OR") {
      for (std::size_t i = 0; i < 2; ++i) {
        const Type t = (*v)[i].type;
        if (t != Type::boolean && t != Type::null) {
          return std::unexpected(error_at(n.children[i], op + " needs BOOLEAN operands, got " + quoted(t)));
        }
      }
      return node(op == "AND" ? Op::and_ : Op::or_, Type::boolean, std::move(*v));
    }
    if (op == "=" || op == "<>" || op == "!=" || op == "<" || op == "<=" || op == ">" || op == ">=") {
      if (!common(a, b) || a == Type::interval) return mismatch("cannot compare these types");
      const Op o = op == "="    ? Op::eq
                   : op == "<"  ? Op::lt
                   : op == "<=" ? Op::le
                   : op == ">"  ? Op::gt
                   : op == ">=" ? Op::ge
                                : Op::ne;
      return node(o, Type::boolean, std::move(*v));
    }
    if (op == "||") {
      if ((a != Type::string && a != Type::null) || (b != Type::string && b != Type::null)) {
        return mismatch("needs STRING operands");
      }
      return node(Op::concat, Type::string, std::move(*v));
    }
    const Op o = op == "+" ? Op::add : op == "-" ? Op::sub : op == "*" ? Op::mul : op == "/" ? Op::div : Op::mod;
    if ((o == Op::add || o == Op::sub) && a == Type::timestamp && b == Type::interval) {
      return node(o, Type::timestamp, std::move(*v));
    }
    if (!numeric(a) || !numeric(b)) return mismatch("needs numbers");
    const Type t = a == Type::double_ || b == Type::double_ ? Type::double_ : Type::bigint;
    return node(o, t, std::move(*v));
  }

  Compiled unary(const Node& n, bool in_aggregate) {
    auto v = compile(n.children.at(0), in_aggregate);
    if (!v) return v;
    if (n.text == "NOT") {
      if (v->type != Type::boolean && v->type != Type::null) {
        return std::unexpected(error_at(n, "NOT needs a BOOLEAN, got " + quoted(v->type)));
      }
      return node(Op::not_, Type::boolean, {std::move(*v)});
    }
    if (!numeric(v->type)) return std::unexpected(error_at(n, "'-' needs a number, got " + quoted(v->type)));
    const Type t = v->type;
    return node(Op::neg, t, {std::move(*v)});
  }

  Compiled between(const Node& n, bool in_aggregate) {
    auto v = operands(n, in_aggregate);
    if (!v) return std::unexpected(v.error());
    for (std::size_t i = 1; i < 3; ++i) {
      if (!common((*v)[0].type, (*v)[i].type)) {
        return std::unexpected(error_at(
            n.children[i], "BETWEEN cannot compare " + quoted((*v)[0].type) + " with " + quoted((*v)[i].type)));
      }
    }
    Expr lo = node(Op::ge, Type::boolean, {(*v)[0], (*v)[1]});
    Expr hi = node(Op::le, Type::boolean, {(*v)[0], (*v)[2]});
    Expr both = node(Op::and_, Type::boolean, {std::move(lo), std::move(hi)});
    if (n.text == "NOT") return node(Op::not_, Type::boolean, {std::move(both)});
    return both;
  }

  Compiled in_list(const Node& n, bool in_aggregate) {
    auto v = operands(n, in_aggregate);
    if (!v) return std::unexpected(v.error());
    for (std::size_t i = 1; i < v->size(); ++i) {
      if (!common((*v)[0].type, (*v)[i].type)) {
        return std::unexpected(
            error_at(n.children[i], "IN cannot compare " + quoted((*v)[0].type) + " with " + quoted((*v)[i].type)));
      }
    }
    Expr e = node(Op::in_list, Type::boolean, std::move(*v));
    e.negate = n.text == "NOT";
    return e;
  }

  Compiled case_when(const Node& n, bool in_aggregate) {
    std::size_t i = 0;
    std::optional<Expr> operand;
    if (!n.children.empty() && n.children[0].kind != Kind::when) {
      auto o = compile(n.children[0], in_aggregate);
      if (!o) return o;
      operand = std::move(*o);
      i = 1;
    }
    std::vector<Expr> args;
    Type result = Type::null;
    const auto add_result = [&](const Node& at, Expr r) -> std::expected<void, QueryError> {
      const auto t = common(result, r.type);
      if (!t) {
        return std::unexpected(error_at(at, "CASE branches mix " + quoted(result) + " and " + quoted(r.type)));
      }
      result = *t;
      args.push_back(std::move(r));
      return {};
    };
    bool has_else = false;
    for (; i < n.children.size(); ++i) {
      const Node& c = n.children[i];
      if (c.kind == Kind::else_branch) {
        auto r = compile(c.children.at(0), in_aggregate);
        if (!r) return r;
        if (auto ok = add_result(c, std::move(*r)); !ok) return std::unexpected(ok.error());
        has_else = true;
        continue;
      }
      auto cond = compile(c.children.at(0), in_aggregate);
      if (!cond) return cond;
      if (operand) {
        if (!common(operand->type, cond->type)) {
          return std::unexpected(
              error_at(c, "CASE cannot compare " + quoted(operand->type) + " with " + quoted(cond->type)));
        }
        cond = node(Op::eq, Type::boolean, {*operand, std::move(*cond)});
      } else if (cond->type != Type::boolean && cond->type != Type::null) {
        return std::unexpected(error_at(c, "WHEN needs a BOOLEAN condition, got " + quoted(cond->type)));
      }
      args.push_back(std::move(*cond));
      auto r = compile(c.children.at(1), in_aggregate);
      if (!r) return r;
      if (auto ok = add_result(c, std::move(*r)); !ok) return std::unexpected(ok.error());
    }
    if (!has_else) args.push_back(constant(Value{}));
    return node(Op::case_, result, std::move(args));
  }

  Compiled call(const Node& n, bool in_aggregate) {
    std::string name;
    for (const char c : n.text) name.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    bool distinct = false, star = false;
    std::vector<const Node*> args;
    for (const auto& c : n.children) {
      if (c.kind == Kind::over) return std::unexpected(error_at(c, "OVER windows are not supported yet"));
      if (c.kind == Kind::distinct) {
        distinct = true;
      } else if (c.kind == Kind::star) {
        star = true;
      } else {
        args.push_back(&c);
      }
    }
    const bool aggregate = name == "COUNT" || name == "SUM" || name == "MIN" || name == "MAX" || name == "AVG";
    if (aggregate) return aggregate_call(n, name, distinct, star, args, in_aggregate);
    if (distinct || star) return std::unexpected(error_at(n, name + " takes no DISTINCT or *"));
    const auto arity = [&](std::size_t k) -> std::expected<std::vector<Expr>, QueryError> {
      if (args.size() != k) {
        return std::unexpected(error_at(n, name + " takes " + std::to_string(k) + " argument" + (k == 1 ? "" : "s")));
      }
      std::vector<Expr> out;
      for (const Node* a : args) {
        auto e = compile(*a, in_aggregate);
        if (!e) return std::unexpected(e.error());
        out.push_back(std::move(*e));
      }
      return out;
    };
    if (name == "MOD") {
      auto v = arity(2);
      if (!v) return std::unexpected(v.error());
      if (!numeric((*v)[0].type) || !numeric((*v)[1].type)) return std::unexpected(error_at(n, "MOD needs numbers"));
      const Type t = (*v)[0].type == Type::double_ || (*v)[1].type == Type::double_ ? Type::double_ : Type::bigint;
      return node(Op::mod, t, std::move(*v));
    }
    if (name == "ABS") {
      auto v = arity(1);
      if (!v) return std::unexpected(v.error());
      if (!numeric((*v)[0].type)) return std::unexpected(error_at(n, "ABS needs a number"));
      const Type t = (*v)[0].type;
      return node(Op::abs, t, std::move(*v));
    }
    if (name == "UPPER" || name == "LOWER" || name == "CHAR_LENGTH") {
      auto v = arity(1);
      if (!v) return std::unexpected(v.error());
      if ((*v)[0].type != Type::string && (*v)[0].type != Type::null) {
        return std::unexpected(error_at(n, name + " needs a STRING, got " + quoted((*v)[0].type)));
      }
      if (name == "CHAR_LENGTH") return node(Op::char_length, Type::bigint, std::move(*v));
      return node(name == "UPPER" ? Op::upper : Op::lower, Type::string, std::move(*v));
    }
    return std::unexpected(error_at(n, "unknown function '" + n.text + "'"));
  }

  Compiled aggregate_call(const Node& n, const std::string& name, bool distinct, bool star,
                          const std::vector<const Node*>& args, bool in_aggregate) {
    if (m_scope.aggregates == nullptr) {
      return std::unexpected(
          error_at(n, "aggregate " + name + " needs GROUP BY window_start, window_end over a window function"));
    }
    if (in_aggregate) return std::unexpected(error_at(n, "aggregates cannot be nested"));
    AggSpec spec;
    if (star) {
      if (name != "COUNT") return std::unexpected(error_at(n, name + "(*) is not valid; only COUNT(*)"));
      spec.fn = AggFn::count_star;
    } else {
      if (args.size() != 1) return std::unexpected(error_at(n, name + " takes one argument"));
      auto arg = compile(*args[0], true);
      if (!arg) return arg;
      const Type t = arg->type;
      if (distinct && name != "COUNT") return std::unexpected(error_at(n, "DISTINCT is supported in COUNT only"));
      if ((name == "SUM" || name == "AVG") && !numeric(t)) {
        return std::unexpected(error_at(n, name + " needs a number, got " + quoted(t)));
      }
      if ((name == "MIN" || name == "MAX") && !(numeric(t) || t == Type::timestamp || t == Type::string)) {
        return std::unexpected(error_at(n, name + " needs a number, time or string, got " + quoted(t)));
      }
      spec.arg = std::move(*arg);
      spec.fn = name == "COUNT" ? (distinct ? AggFn::count_distinct : AggFn::count)
                : name == "SUM" ? AggFn::sum
                : name == "MIN" ? AggFn::min
                : name == "MAX" ? AggFn::max
                                : AggFn::avg;
      spec.type = name == "COUNT" ? Type::bigint : name == "AVG" ? Type::double_ : (t == Type::null ? Type::bigint : t);
    }
    Expr ref;
    ref.op = Op::slot;
    ref.type = spec.type;
    ref.slot = m_scope.agg_base + m_scope.aggregates->size();
    m_scope.aggregates->push_back(std::move(spec));
    return ref;
  }

  const Scope& m_scope;
};

}  // namespace

std::expected<Expr, QueryError> compile_expr(const Node& n, const Scope& scope) {
  return Compiler(scope).compile(n);
}

std::expected<std::int64_t, QueryError> interval_ms(const Node& interval) {
  if (interval.kind != Kind::interval || interval.children.empty()) {
    return std::unexpected(error_at(interval, "expected an INTERVAL"));
  }
  const std::string& text = interval.children[0].text;
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || end == text.c_str() || *end != '\0' || errno != 0 || n < 0 || n > 1'000'000'000) {
    return std::unexpected(
        error_at(interval, "an INTERVAL needs a whole number between 0 and 1000000000, got '" + text + "'"));
  }
  const std::string& unit = interval.text;
  const std::int64_t scale = unit == "MILLISECOND" ? 1
                             : unit == "SECOND"    ? 1000
                             : unit == "MINUTE"    ? 60'000
                             : unit == "HOUR"      ? 3'600'000
                                                   : 86'400'000;
  return n * scale;
}

std::expected<Type, QueryError> column_type(const Node& type) {
  return sql_type(type);
}

}  // namespace rill::sql::detail
