// MATCH_RECOGNIZE from the SQL AST to a CEP pattern: the PATTERN tree, AFTER MATCH SKIP,
// WITHIN, and DEFINE / MEASURES expressions compiled once into closures over a MatchView
// (names resolved at compile time, so evaluation does no lookups).
#include "rill/stream/cep_sql.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>
#include <utility>

namespace rill::stream::cep {

namespace {

using sql::Kind;
using sql::Node;
using Num = std::optional<double>;
using Expr = std::function<Num(const MatchView&)>;
using Row = std::function<const Event*(const MatchView&)>;

std::unexpected<Error> error_at(const Node& n, std::string_view message) {
  std::string s = std::to_string(n.line);
  s += ':';
  s += std::to_string(n.column);
  s += ": ";
  s += message;
  return fail(Errc::invalid_argument, std::move(s));
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Where an expression sits: the columns, the pattern's variables, the variable a DEFINE
// condition is for (empty in MEASURES).
struct Scope {
  const std::vector<std::string>& columns;
  const std::set<std::string>& vars;
  std::string defining;
  std::size_t* max_prev;  // the largest PREV offset seen (what Options::prev_rows should keep)
};

struct ColumnRef {
  std::string var;  // empty: unqualified
  std::size_t index = 0;
};

Result<ColumnRef> column_ref(const Node& n, const Scope& scope) {
  if (n.kind != Kind::column_ref) return error_at(n, "expected a column here (VAR.column or column)");
  ColumnRef c;
  std::string name = n.text;
  if (const auto dot = name.find('.'); dot != std::string::npos) {
    c.var = name.substr(0, dot);
    name = name.substr(dot + 1);
    if (!scope.vars.contains(c.var)) return error_at(n, "unknown pattern variable " + c.var);
  }
  const auto it = std::find(scope.columns.begin(), scope.columns.end(), name);
  if (it == scope.columns.end()) return error_at(n, "unknown column " + name);
  c.index = static_cast<std::size_t>(it - scope.columns.begin());
  return c;
}

Num value_of(const Event* e, std::size_t col) {
  if (e == nullptr || col >= e->values.size()) return std::nullopt;
  return e->values[col];
}

// The row a plain reference reads: the current row for `col` and for the defined
// variable's own `VAR.col`, else the last row of VAR (SQL's running semantics).
Row row_of(const ColumnRef& c, const Scope& scope) {
  if (c.var.empty() || c.var == scope.defining) return [](const MatchView& m) { return &m.current(); };
  return [var = c.var](const MatchView& m) { return m.last(var); };
}

Result<std::size_t> offset_arg(const Node& call, std::size_t i, std::size_t fallback) {
  if (call.children.size() <= i) return fallback;
  const Node& n = call.children[i];
  std::size_t v = 0;
  const auto [end, ec] = std::from_chars(n.text.data(), n.text.data() + n.text.size(), v);
  if (n.kind != Kind::number || ec != std::errc{} || end != n.text.data() + n.text.size() || v > 1'000'000) {
    return error_at(n, "the offset must be a whole number");
  }
  return v;
}

Result<Expr> compile_expr(const Node& n, const Scope& scope);

Result<Expr> compile_call(const Node& n, const Scope& scope) {
  const std::string name = upper(n.text);
  const auto& args = n.children;
  const bool measure = scope.defining.empty();
  if (name == "MATCH_NUMBER" && measure && args.empty()) {
    return Expr([](const MatchView& m) -> Num { return static_cast<double>(m.match_number()); });
  }
  if (name == "COUNT" && args.size() == 1 && args[0].kind == Kind::star) {
    return Expr([](const MatchView& m) -> Num { return static_cast<double>(m.size()); });
  }
  const bool navigation = name == "PREV" || name == "FIRST" || name == "LAST";
  const bool aggregate = name == "SUM" || name == "AVG" || name == "MIN" || name == "MAX" || name == "COUNT";
  if (!navigation && !aggregate) return error_at(n, "function " + name + " is not supported here");
  if (args.empty() || args.size() > (navigation ? 2u : 1u)) return error_at(n, "wrong number of arguments to " + name);
  auto c = column_ref(args[0], scope);
  if (!c) return std::unexpected(c.error());
  const std::size_t col = c->index;
  const std::string var = c->var;
  if (navigation) {
    auto off = offset_arg(n, 1, name == "PREV" ? 1 : 0);  // PREV(x) is one row back, FIRST/LAST(x) the row itself
    if (!off) return std::unexpected(off.error());
    const std::size_t k = *off;
    if (name == "PREV") {
      if (!var.empty() && var != scope.defining) return error_at(n, "PREV of another variable's row is not supported");
      *scope.max_prev = std::max(*scope.max_prev, k);
      return Expr([col, k](const MatchView& m) { return value_of(m.prev(k), col); });
    }
    const bool first = name == "FIRST";
    if (!var.empty()) {
      return Expr(
          [var, col, k, first](const MatchView& m) { return value_of(first ? m.first(var, k) : m.last(var, k), col); });
    }
    return Expr([col, k, first](const MatchView& m) -> Num {
      if (k >= m.size()) return std::nullopt;
      return value_of(&m.row(first ? k : m.size() - 1 - k), col);
    });
  }
  if (name == "COUNT") {
    if (var.empty()) return Expr([](const MatchView& m) -> Num { return static_cast<double>(m.size()); });
    return Expr([var](const MatchView& m) -> Num { return static_cast<double>(m.count(var)); });
  }
  // SUM / AVG / MIN / MAX over the rows of VAR (or every row), NULL without rows.
  return Expr([var, col, name](const MatchView& m) -> Num {
    double sum = 0, lo = 0, hi = 0;
    std::size_t n = 0;
    for (std::size_t i = 0; i < m.size(); ++i) {
      if (!var.empty() && m.classifier(i) != var) continue;
      const double x = field(&m.row(i), col);
      lo = n == 0 ? x : std::min(lo, x);
      hi = n == 0 ? x : std::max(hi, x);
      sum += x;
      ++n;
    }
    if (name == "SUM") return n == 0 ? Num{} : Num{sum};
    if (n == 0) return std::nullopt;
    if (name == "AVG") return sum / static_cast<double>(n);
    return name == "MIN" ? lo : hi;
  });
}

Num truth(bool b) {
  return b ? 1.0 : 0.0;
}

Result<Expr> compile_binary(const Node& n, const Scope& scope) {
  if (n.children.size() != 2) return error_at(n, "malformed expression");
  auto a = compile_expr(n.children[0], scope);
  if (!a) return a;
  auto b = compile_expr(n.children[1], scope);
  if (!b) return b;
  const std::string op = upper(n.text);
  Expr l = std::move(*a), r = std::move(*b);
  if (op == "AND" || op == "OR") {
    const bool is_and = op == "AND";
    return Expr([l, r, is_and](const MatchView& m) -> Num {
      const Num x = l(m), y = r(m);
      const bool decisive = is_and ? ((x && *x == 0) || (y && *y == 0)) : ((x && *x != 0) || (y && *y != 0));
      if (decisive) return truth(!is_and);
      if (!x || !y) return std::nullopt;
      return truth(is_and);
    });
  }
  using F = double (*)(double, double);
  static const std::vector<std::pair<std::string_view, F>> ops{
      {"+", [](double x, double y) { return x + y; }},
      {"-", [](double x, double y) { return x - y; }},
      {"*", [](double x, double y) { return x * y; }},
      {"/", [](double x, double y) { return y == 0 ? NAN : x / y; }},
      {"%", [](double x, double y) { return y == 0 ? NAN : std::fmod(x, y); }},
      {"=", [](double x, double y) { return x == y ? 1.0 : 0.0; }},
      {"<>", [](double x, double y) { return x != y ? 1.0 : 0.0; }},
      {"!=", [](double x, double y) { return x != y ? 1.0 : 0.0; }},
      {"<", [](double x, double y) { return x < y ? 1.0 : 0.0; }},
      {"<=", [](double x, double y) { return x <= y ? 1.0 : 0.0; }},
      {">", [](double x, double y) { return x > y ? 1.0 : 0.0; }},
      {">=", [](double x, double y) { return x >= y ? 1.0 : 0.0; }}};
  const auto it = std::find_if(ops.begin(), ops.end(), [&](const auto& p) { return p.first == op; });
  if (it == ops.end()) return error_at(n, "operator " + op + " is not supported here");
  const F f = it->second;
  return Expr([l, r, f](const MatchView& m) -> Num {
    const Num x = l(m), y = r(m);
    if (!x || !y) return std::nullopt;
    const double v = f(*x, *y);
    if (std::isnan(v)) return std::nullopt;  // division by zero: NULL
    return v;
  });
}

Result<Expr> compile_expr(const Node& n, const Scope& scope) {
  switch (n.kind) {
    case Kind::number: {
      double v = 0;
      const auto [end, ec] = std::from_chars(n.text.data(), n.text.data() + n.text.size(), v);
      if (ec != std::errc{} || end != n.text.data() + n.text.size()) return error_at(n, "not a number");
      return Expr([v](const MatchView&) -> Num { return v; });
    }
    case Kind::boolean: {
      const Num v = truth(upper(n.text) == "TRUE");
      return Expr([v](const MatchView&) { return v; });
    }
    case Kind::null:
      return Expr([](const MatchView&) { return Num{}; });
    case Kind::column_ref: {
      auto c = column_ref(n, scope);
      if (!c) return std::unexpected(c.error());
      return Expr([row = row_of(*c, scope), col = c->index](const MatchView& m) { return value_of(row(m), col); });
    }
    case Kind::unary: {
      if (n.children.size() != 1) return error_at(n, "malformed expression");
      auto a = compile_expr(n.children[0], scope);
      if (!a) return a;
      const bool negate = n.text == "-";
      return Expr([e = std::move(*a), negate](const MatchView& m) -> Num {
        const Num x = e(m);
        if (!x) return std::nullopt;
        return negate ? -*x : truth(*x == 0);
      });
    }
    case Kind::binary:
      return compile_binary(n, scope);
    case Kind::is_null: {
      if (n.children.size() != 1) return error_at(n, "malformed expression");
      auto a = compile_expr(n.children[0], scope);
      if (!a) return a;
      const bool want_null = n.text.empty();
      return Expr([e = std::move(*a), want_null](const MatchView& m) { return truth(e(m).has_value() == !want_null); });
    }
    case Kind::between:
    case Kind::in_list: {
      std::vector<Expr> parts;
      for (const Node& c : n.children) {
        auto e = compile_expr(c, scope);
        if (!e) return e;
        parts.push_back(std::move(*e));
      }
      if (parts.size() < 2 || (n.kind == Kind::between && parts.size() != 3))
        return error_at(n, "malformed expression");
      const bool negated = !n.text.empty();
      const bool between = n.kind == Kind::between;
      return Expr([parts, negated, between](const MatchView& m) -> Num {
        const Num x = parts[0](m);
        if (!x) return std::nullopt;
        bool hit = false;
        if (between) {
          const Num lo = parts[1](m), hi = parts[2](m);
          if (!lo || !hi) return std::nullopt;
          hit = *lo <= *x && *x <= *hi;
        } else {
          for (std::size_t i = 1; i < parts.size() && !hit; ++i) hit = parts[i](m) == x;
        }
        return truth(hit != negated);
      });
    }
    case Kind::call:
      return compile_call(n, scope);
    default:
      break;
  }
  std::string what(sql::kind_name(n.kind));
  return error_at(n, what + " is not supported in DEFINE or MEASURES");
}

Result<PatternNode> compile_pattern(const Node& n, std::set<std::string>& vars) {
  switch (n.kind) {
    case Kind::pattern_var:
      vars.insert(n.text);
      return var(n.text);
    case Kind::pattern_seq:
    case Kind::pattern_alt: {
      std::vector<PatternNode> parts;
      for (const Node& c : n.children) {
        auto p = compile_pattern(c, vars);
        if (!p) return p;
        parts.push_back(std::move(*p));
      }
      if (parts.empty()) return error_at(n, "an empty pattern");
      return n.kind == Kind::pattern_seq ? seq(std::move(parts)) : alt(std::move(parts));
    }
    case Kind::quantified: {
      if (n.children.size() != 1) return error_at(n, "malformed quantifier");
      auto p = compile_pattern(n.children[0], vars);
      if (!p) return p;
      std::string q = n.text;
      bool greedy = true;
      if (q.size() > 1 && q.back() == '?') {
        greedy = false;
        q.pop_back();
      }
      Quantifier out{.min = 0, .max = Quantifier::unbounded, .greedy = greedy};
      if (q == "*") {
      } else if (q == "+") {
        out.min = 1;
      } else if (q == "?") {
        out.max = 1;
      } else if (q.size() >= 3 && q.front() == '{' && q.back() == '}') {
        const std::string body = q.substr(1, q.size() - 2);
        const auto comma = body.find(',');
        auto number = [](std::string_view s, std::uint32_t& v) {
          const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
          return ec == std::errc{} && end == s.data() + s.size() && v < Quantifier::unbounded;
        };
        const std::string lo = body.substr(0, comma);
        const std::string hi = comma == std::string::npos ? lo : body.substr(comma + 1);
        if ((!lo.empty() && !number(lo, out.min)) || (!hi.empty() && !number(hi, out.max))) {
          return error_at(n, "bad quantifier " + n.text);
        }
      } else {
        return error_at(n, "bad quantifier " + n.text);
      }
      if (out.max == 0 || out.min > out.max) return error_at(n, "quantifier " + n.text + " matches no row");
      p->q = out;
      return p;
    }
    default:
      return error_at(n, "unexpected node in PATTERN");
  }
}

Result<std::chrono::milliseconds> interval_ms(const Node& n) {
  if (n.kind != Kind::interval || n.children.size() != 1) return error_at(n, "WITHIN needs an INTERVAL");
  const std::string unit = upper(n.text);
  const std::vector<std::pair<std::string_view, std::int64_t>> units{
      {"MILLISECOND", 1}, {"SECOND", 1000}, {"MINUTE", 60'000}, {"HOUR", 3'600'000}, {"DAY", 86'400'000}};
  const auto it = std::find_if(units.begin(), units.end(), [&](const auto& u) { return u.first == unit; });
  const std::string& text = n.children[0].text;
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (it == units.end() || ec != std::errc{} || end != text.data() + text.size() || v <= 0 ||
      v > std::numeric_limits<std::int64_t>::max() / it->second) {
    return error_at(n, "WITHIN needs a whole, positive INTERVAL in MILLISECOND ... DAY");
  }
  return std::chrono::milliseconds(v * it->second);
}

// AFTER MATCH SKIP: the parser gives "PAST LAST ROW", "TO NEXT ROW", "TO FIRST v",
// "TO LAST v" or "TO v" (SQL's TO v is TO LAST v); a variable child is taken as well.
Result<void> compile_skip(const Node& n, Pattern& p) {
  std::vector<std::string> words;
  std::string w;
  for (char c : n.text + " ") {
    if (c != ' ') {
      w += c;
    } else if (!w.empty()) {
      words.push_back(std::exchange(w, {}));
    }
  }
  for (const Node& c : n.children) {
    if (!c.text.empty()) words.push_back(c.text);
  }
  if (!words.empty() && upper(words[0]) == "TO") words.erase(words.begin());
  const std::string head = words.empty() ? std::string() : upper(words[0]);
  if (upper(n.text) == "PAST LAST ROW") {
    p.skip = Skip::past_last_row;
  } else if (head == "NEXT" && words.size() == 2 && upper(words[1]) == "ROW") {
    p.skip = Skip::to_next_row;
  } else if ((head == "FIRST" || head == "LAST") && words.size() == 2) {
    p.skip = head == "FIRST" ? Skip::to_first : Skip::to_last;
    p.skip_to = words[1];
  } else if (words.size() == 1) {
    p.skip = Skip::to_last;
    p.skip_to = words[0];
  } else {
    return error_at(n, "unknown AFTER MATCH SKIP " + n.text);
  }
  return {};
}

}  // namespace

Result<SqlPattern> compile_match_recognize(const Node& mr, const std::vector<std::string>& columns) {
  if (mr.kind != Kind::match_recognize) return error_at(mr, "not a MATCH_RECOGNIZE clause");
  SqlPattern out;
  std::set<std::string> vars;
  const Node* define = nullptr;
  const Node* measures = nullptr;
  for (const Node& c : mr.children) {
    switch (c.kind) {
      case Kind::partition_by:
        for (const Node& k : c.children) {
          if (k.kind != Kind::column_ref) return error_at(k, "PARTITION BY takes columns");
          out.partition_by.push_back(k.text);
        }
        break;
      case Kind::order_by:
        if (c.children.size() != 1 || c.children[0].children.size() != 1 ||
            c.children[0].children[0].kind != Kind::column_ref || upper(c.children[0].text) == "DESC") {
          return error_at(c, "ORDER BY takes one time column, ascending");
        }
        out.order_by = c.children[0].children[0].text;
        break;
      case Kind::measures:
        measures = &c;
        break;
      case Kind::rows_per_match:
        out.rows_per_match = upper(c.text).starts_with("ALL") ? RowsPerMatch::all : RowsPerMatch::one;
        break;
      case Kind::after_match:
        if (auto ok = compile_skip(c, out.pattern); !ok) return std::unexpected(ok.error());
        break;
      case Kind::pattern: {
        if (c.children.empty()) return error_at(c, "an empty pattern");
        auto root = compile_pattern(c.children[0], vars);
        if (!root) return std::unexpected(root.error());
        out.pattern.root = std::move(*root);
        if (c.children.size() > 1 && c.children[1].kind == Kind::within && !c.children[1].children.empty()) {
          auto ms = interval_ms(c.children[1].children[0]);
          if (!ms) return std::unexpected(ms.error());
          out.pattern.within = *ms;
        }
        break;
      }
      case Kind::define:
        define = &c;
        break;
      default:
        return error_at(c, "unexpected clause in MATCH_RECOGNIZE");
    }
  }
  if (define != nullptr) {
    for (const Node& item : define->children) {
      if (!vars.contains(item.text)) return error_at(item, "DEFINE of " + item.text + ", which PATTERN does not use");
      if (item.children.size() != 1) return error_at(item, "malformed DEFINE");
      auto e = compile_expr(item.children[0], Scope{columns, vars, item.text, &out.prev_rows});
      if (!e) return std::unexpected(e.error());
      out.pattern.define[item.text] = [e = std::move(*e)](const MatchView& m) {
        const Num v = e(m);
        return v && *v != 0;
      };
    }
  }
  if (measures != nullptr) {
    for (const Node& item : measures->children) {
      if (item.children.size() != 1) return error_at(item, "malformed measure");
      const Node& x = item.children[0];
      const std::string fn = x.kind == Kind::call ? upper(x.text) : std::string();
      if (fn == "CLASSIFIER" && x.children.empty()) {
        out.measures.emplace_back(item.text, [](const MatchView& m) {
          return m.size() == 0 ? Value{} : Value{std::string(m.classifier(m.size() - 1))};
        });
        continue;
      }
      auto e = compile_expr(x, Scope{columns, vars, {}, &out.prev_rows});
      if (!e) return std::unexpected(e.error());
      const bool integral = fn == "COUNT" || fn == "MATCH_NUMBER";
      out.measures.emplace_back(item.text, [e = std::move(*e), integral](const MatchView& m) {
        const Num v = e(m);
        if (!v) return Value{};
        return integral ? Value{static_cast<std::int64_t>(*v)} : Value{*v};
      });
    }
  }
  if (out.pattern.skip == Skip::to_first || out.pattern.skip == Skip::to_last) {
    if (!vars.contains(out.pattern.skip_to)) {
      return fail(Errc::invalid_argument,
                  "AFTER MATCH SKIP TO " + out.pattern.skip_to + ", which PATTERN does not use");
    }
  }
  return out;
}

}  // namespace rill::stream::cep
