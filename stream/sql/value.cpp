// Values as text and JSON, type names, names and errors.
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "stream/sql/plan.hpp"

namespace rill::sql {

namespace {

// YYYY-MM-DDTHH:MM:SS.mmmZ, also before 1970 (floor division).
std::string iso_ms(std::int64_t ms) {
  using namespace std::chrono;
  const auto tp = sys_time<milliseconds>(milliseconds(ms));
  const auto day = floor<days>(tp);
  const year_month_day ymd(day);
  const hh_mm_ss hms(tp - day);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
  return buf;
}

std::string double_text(double d) {
  if (std::isnan(d) || std::isinf(d)) return d != d ? "NaN" : (d > 0 ? "Infinity" : "-Infinity");
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  // The shortest form that reads back the same, as most JSON writers print.
  for (int precision = 1; precision < 17; ++precision) {
    char shorter[32];
    std::snprintf(shorter, sizeof shorter, "%.*g", precision, d);
    if (std::strtod(shorter, nullptr) == d) return shorter;
  }
  return buf;
}

void append_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (const char ch : s) {
    if (ch == '"' || ch == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(ch));
      out += buf;
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
}

}  // namespace

std::string_view type_name(Type t) noexcept {
  switch (t) {
    case Type::null:
      return "NULL";
    case Type::boolean:
      return "BOOLEAN";
    case Type::bigint:
      return "BIGINT";
    case Type::double_:
      return "DOUBLE";
    case Type::string:
      return "STRING";
    case Type::timestamp:
      return "TIMESTAMP(3)";
    case Type::interval:
      return "INTERVAL";
  }
  return "?";
}

std::string to_text(const Value& v) {
  switch (v.type) {
    case Type::null:
      return "NULL";
    case Type::boolean:
      return v.i != 0 ? "TRUE" : "FALSE";
    case Type::bigint:
    case Type::interval:
      return std::to_string(v.i);
    case Type::double_:
      return double_text(v.d);
    case Type::string:
      return v.s;
    case Type::timestamp:
      return iso_ms(v.i);
  }
  return "?";
}

void append_json(std::string& out, const Value& v) {
  switch (v.type) {
    case Type::null:
      out += "null";
      break;
    case Type::boolean:
      out += v.i != 0 ? "true" : "false";
      break;
    case Type::bigint:
    case Type::interval:
      out += std::to_string(v.i);
      break;
    case Type::double_:
      out += std::isfinite(v.d) ? double_text(v.d) : "null";
      break;
    case Type::string:
      append_string(out, v.s);
      break;
    case Type::timestamp:
      append_string(out, iso_ms(v.i));
      break;
  }
}

std::string row_object_json(const std::vector<Column>& columns, const std::vector<Value>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < columns.size() && i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_string(out, columns[i].name);
    out.push_back(':');
    append_json(out, values[i]);
  }
  out.push_back('}');
  return out;
}

std::string Table::option(const std::string& key) const {
  const auto it = options.find(key);
  return it == options.end() ? std::string() : it->second;
}

std::string QueryError::to_string() const {
  return std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

namespace detail {

bool same_name(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

QueryError error_at(const Node& n, std::string message) {
  // An operator node sits at its operator; the message points where its expression starts.
  const Node* at = &n;
  while ((at->kind == Kind::binary || at->kind == Kind::between || at->kind == Kind::in_list ||
          at->kind == Kind::is_null || at->kind == Kind::like) &&
         !at->children.empty()) {
    at = &at->children.front();
  }
  return QueryError{.line = at->line, .column = at->column, .message = std::move(message)};
}

}  // namespace detail

}  // namespace rill::sql
