// Names of the AST's kinds, the S-expression dump, and error text.
#include <array>

#include "rill/sql.hpp"

namespace rill::sql {

namespace {

constexpr std::array<std::string_view, static_cast<std::size_t>(Kind::identifier) + 1> kind_names{
    "script",       "create_table", "column_def",     "type",        "watermark",     "with_options",
    "option",       "insert",       "select",         "select_list", "item",          "star",
    "alias",        "from",         "table",          "source",      "subquery",      "window_tvf",
    "descriptor",   "join",         "on",             "where",       "group_by",      "having",
    "order_by",     "order_item",   "partition_by",   "binary",      "unary",         "between",
    "in_list",      "is_null",      "like",           "case_when",   "when",          "else_branch",
    "cast",         "call",         "distinct",       "over",        "frame",         "frame_bound",
    "column_ref",   "number",       "string",         "boolean",     "null",          "interval",
    "match_recognize", "measures",  "measure",        "rows_per_match", "after_match", "pattern",
    "within",       "pattern_alt",  "pattern_seq",    "quantified",  "pattern_var",   "define",
    "define_item",  "identifier"};

void dump_to(const Node& node, std::string& out) {
  out += '(';
  out += kind_name(node.kind);
  if (!node.text.empty()) {
    out += " \"";
    for (const char c : node.text) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  for (const auto& child : node.children) {
    out += ' ';
    dump_to(child, out);
  }
  out += ')';
}

}  // namespace

std::string_view kind_name(Kind kind) {
  const auto i = static_cast<std::size_t>(kind);
  return i < kind_names.size() ? kind_names[i] : "?";
}

std::string dump(const Node& node) {
  std::string out;
  dump_to(node, out);
  return out;
}

std::string SyntaxError::to_string() const {
  return std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

}  // namespace rill::sql
