// Evaluating compiled expressions: types were checked at compile time, so each operator
// only dispatches on the (already known) operand types and on NULL.
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "stream/sql/plan.hpp"

namespace rill::sql::detail {

namespace {

Value null_value() {
  return Value{};
}
Value boolean(bool b) {
  return Value{.type = Type::boolean, .i = b ? 1 : 0, .d = 0, .s = {}};
}
Value bigint(std::int64_t i) {
  return Value{.type = Type::bigint, .i = i, .d = 0, .s = {}};
}
Value real(double d) {
  return Value{.type = Type::double_, .i = 0, .d = d, .s = {}};
}

double as_double(const Value& v) {
  return v.type == Type::double_ ? v.d : static_cast<double>(v.i);
}

// Numbers compare as numbers, strings bytewise, the rest (timestamps, booleans) by `i`.
int compare(const Value& a, const Value& b) {
  if (a.type == Type::string) return a.s.compare(b.s) < 0 ? -1 : (a.s == b.s ? 0 : 1);
  if (a.type == Type::double_ || b.type == Type::double_) {
    const double x = as_double(a), y = as_double(b);
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  return a.i < b.i ? -1 : (a.i > b.i ? 1 : 0);
}

// Integer arithmetic wraps (two's complement) rather than being undefined on overflow.
std::int64_t wrap(std::uint64_t v) {
  return static_cast<std::int64_t>(v);
}

Value arithmetic(Op op, Type type, const Value& a, const Value& b) {
  if (a.is_null() || b.is_null()) return null_value();
  if (type == Type::double_) {
    const double x = as_double(a), y = as_double(b);
    switch (op) {
      case Op::add:
        return real(x + y);
      case Op::sub:
        return real(x - y);
      case Op::mul:
        return real(x * y);
      case Op::div:
        return y == 0 ? null_value() : real(x / y);
      case Op::mod:
        return y == 0 ? null_value() : real(std::fmod(x, y));
      default:
        return null_value();
    }
  }
  const auto x = static_cast<std::uint64_t>(a.i), y = static_cast<std::uint64_t>(b.i);
  Value out;
  switch (op) {
    case Op::add:
      out = bigint(wrap(x + y));
      break;
    case Op::sub:
      out = bigint(wrap(x - y));
      break;
    case Op::mul:
      out = bigint(wrap(x * y));
      break;
    case Op::div:
      if (b.i == 0 || (b.i == -1 && a.i == std::numeric_limits<std::int64_t>::min())) return null_value();
      out = bigint(a.i / b.i);
      break;
    case Op::mod:
      if (b.i == 0 || b.i == -1) return b.i == 0 ? null_value() : bigint(0);
      out = bigint(a.i % b.i);
      break;
    default:
      return null_value();
  }
  out.type = type;  // timestamp +/- interval stays a timestamp
  return out;
}

// SQL LIKE: '%' any run, '_' one byte; iterative with one backtrack point.
bool like(std::string_view s, std::string_view p) {
  std::size_t si = 0, pi = 0, star = std::string_view::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && (p[pi] == '_' || p[pi] == s[si])) {
      ++si;
      ++pi;
    } else if (pi < p.size() && p[pi] == '%') {
      star = pi++;
      mark = si;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '%') ++pi;
  return pi == p.size();
}

Value cast(const Value& v, Type to) {
  if (v.is_null() || v.type == to) return v;
  switch (to) {
    case Type::string:
      return Value{.type = Type::string, .i = 0, .d = 0, .s = to_text(v)};
    case Type::double_:
      if (v.type == Type::string) {
        char* end = nullptr;
        const double d = std::strtod(v.s.c_str(), &end);
        return end != v.s.c_str() && *end == '\0' ? real(d) : null_value();
      }
      return real(as_double(v));
    case Type::bigint:
    case Type::timestamp: {
      Value out;
      if (v.type == Type::string) {
        char* end = nullptr;
        const long long i = std::strtoll(v.s.c_str(), &end, 10);
        if (end == v.s.c_str() || *end != '\0') return null_value();
        out = bigint(i);
      } else if (v.type == Type::double_) {
        if (!std::isfinite(v.d) || std::fabs(v.d) >= 9.2e18) return null_value();
        out = bigint(static_cast<std::int64_t>(v.d));
      } else {
        out = bigint(v.i);
      }
      out.type = to;
      return out;
    }
    case Type::boolean:
      if (v.type == Type::string) {
        if (same_name(v.s, "true")) return boolean(true);
        if (same_name(v.s, "false")) return boolean(false);
        return null_value();
      }
      return boolean(v.type == Type::double_ ? v.d != 0 : v.i != 0);
    default:
      return null_value();
  }
}

}  // namespace

Value eval(const Expr& e, const std::vector<Value>& row) {
  switch (e.op) {
    case Op::constant:
      return e.value;
    case Op::slot:
      return e.slot < row.size() ? row[e.slot] : null_value();
    case Op::add:
    case Op::sub:
    case Op::mul:
    case Op::div:
    case Op::mod:
      return arithmetic(e.op, e.type, eval(e.args[0], row), eval(e.args[1], row));
    case Op::concat: {
      Value a = eval(e.args[0], row);
      const Value b = eval(e.args[1], row);
      if (a.is_null() || b.is_null()) return null_value();
      a.s += b.s;
      return a;
    }
    case Op::eq:
    case Op::ne:
    case Op::lt:
    case Op::le:
    case Op::gt:
    case Op::ge: {
      const Value a = eval(e.args[0], row), b = eval(e.args[1], row);
      if (a.is_null() || b.is_null()) return null_value();
      const int c = compare(a, b);
      switch (e.op) {
        case Op::eq:
          return boolean(c == 0);
        case Op::ne:
          return boolean(c != 0);
        case Op::lt:
          return boolean(c < 0);
        case Op::le:
          return boolean(c <= 0);
        case Op::gt:
          return boolean(c > 0);
        default:
          return boolean(c >= 0);
      }
    }
    case Op::and_: {
      const Value a = eval(e.args[0], row);
      if (a.type == Type::boolean && a.i == 0) return a;
      const Value b = eval(e.args[1], row);
      if (b.type == Type::boolean && b.i == 0) return b;
      return a.is_null() || b.is_null() ? null_value() : boolean(true);
    }
    case Op::or_: {
      const Value a = eval(e.args[0], row);
      if (a.type == Type::boolean && a.i != 0) return a;
      const Value b = eval(e.args[1], row);
      if (b.type == Type::boolean && b.i != 0) return b;
      return a.is_null() || b.is_null() ? null_value() : boolean(false);
    }
    case Op::not_: {
      const Value a = eval(e.args[0], row);
      return a.is_null() ? a : boolean(a.i == 0);
    }
    case Op::neg: {
      Value a = eval(e.args[0], row);
      if (a.type == Type::double_) a.d = -a.d;
      if (a.type == Type::bigint) a.i = wrap(0 - static_cast<std::uint64_t>(a.i));
      return a;
    }
    case Op::is_null:
      return boolean(eval(e.args[0], row).is_null());
    case Op::is_not_null:
      return boolean(!eval(e.args[0], row).is_null());
    case Op::in_list: {
      const Value a = eval(e.args[0], row);
      if (a.is_null()) return a;
      bool saw_null = false;
      for (std::size_t i = 1; i < e.args.size(); ++i) {
        const Value b = eval(e.args[i], row);
        if (b.is_null()) {
          saw_null = true;
        } else if (compare(a, b) == 0) {
          return boolean(!e.negate);
        }
      }
      return saw_null ? null_value() : boolean(e.negate);
    }
    case Op::like: {
      const Value a = eval(e.args[0], row), p = eval(e.args[1], row);
      if (a.is_null() || p.is_null()) return null_value();
      return boolean(like(a.s, p.s) != e.negate);
    }
    case Op::case_: {
      const std::size_t pairs = (e.args.size() - 1) / 2;
      for (std::size_t i = 0; i < pairs; ++i) {
        if (holds(e.args[2 * i], row)) return cast(eval(e.args[2 * i + 1], row), e.type);
      }
      return cast(eval(e.args.back(), row), e.type);
    }
    case Op::cast:
      return cast(eval(e.args[0], row), e.type);
    case Op::abs: {
      Value a = eval(e.args[0], row);
      if (a.type == Type::double_) a.d = std::fabs(a.d);
      if (a.type == Type::bigint && a.i < 0) a.i = wrap(0 - static_cast<std::uint64_t>(a.i));
      return a;
    }
    case Op::upper:
    case Op::lower: {
      Value a = eval(e.args[0], row);
      for (char& c : a.s) {
        const auto u = static_cast<unsigned char>(c);
        c = static_cast<char>(e.op == Op::upper ? std::toupper(u) : std::tolower(u));
      }
      return a;
    }
    case Op::char_length: {
      const Value a = eval(e.args[0], row);
      return a.is_null() ? a : bigint(static_cast<std::int64_t>(a.s.size()));
    }
  }
  return null_value();
}

}  // namespace rill::sql::detail
