// Parses a script with the PEGTL grammar into a parse tree of the rules that carry a kind,
// then turns that tree into the AST: operator chains folded into binary nodes, keyword
// phrases into node text, names into the text of the node that owns them.
#include <cctype>
#include <cstdio>
#include <tao/pegtl/contrib/parse_tree.hpp>
#include <type_traits>

#include "stream/sql/sql_grammar.hpp"

namespace rill::sql {

namespace {

namespace pegtl = tao::pegtl;
using grammar::Role;

// Recursion is bounded so hostile input cannot exhaust the stack: the rules that nest count.
constexpr int max_depth = 64;
struct Depth {
  int depth = 0;
};
template <typename Rule>
constexpr bool nests = std::is_same_v<Rule, grammar::expr> || std::is_same_v<Rule, grammar::negation> ||
                       std::is_same_v<Rule, grammar::negated> || std::is_same_v<Rule, grammar::pattern_alt> ||
                       std::is_same_v<Rule, grammar::select_stmt>;

bool is_ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// What the parser stopped at, for the message: a word, one character, or the end.
template <typename ParseInput>
std::string found(const ParseInput& in) {
  if (in.empty()) return "the end of the script";
  const char* p = in.current();
  const std::size_t size = in.size(32);
  std::size_t n = 0;
  while (n < size && is_ident_char(p[n])) ++n;
  if (n > 0) return "'" + std::string(p, n) + "'";
  const auto c = static_cast<unsigned char>(p[0]);
  if (c < 0x20 || c >= 0x7f) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
    return buf;
  }
  return "'" + std::string(1, p[0]) + "'";
}

// The rule whose `expected` an error names: must_r<R> raises for rewound<R>.
template <typename Rule>
struct named {
  using type = Rule;
};
template <typename R>
struct named<grammar::rewound<R>> {
  using type = R;
};

template <typename Rule>
struct control : pegtl::normal<Rule> {
  template <typename ParseInput>
  static void start(const ParseInput& in, Depth& d) {
    if constexpr (nests<Rule>) {
      if (++d.depth > max_depth) throw pegtl::parse_error("nesting deeper than 64 levels", in);
    }
  }
  template <typename ParseInput>
  static void success(const ParseInput& /*in*/, Depth& d) noexcept {
    if constexpr (nests<Rule>) --d.depth;
  }
  template <typename ParseInput>
  static void failure(const ParseInput& /*in*/, Depth& d) noexcept {
    if constexpr (nests<Rule>) --d.depth;
  }
  template <typename ParseInput, typename... States>
  [[noreturn]] static void raise(const ParseInput& in, States&&... /*st*/) {
    std::string message = "expected ";
    using Named = typename named<Rule>::type;
    if constexpr (requires { Named::expected; }) {
      message += Named::expected;
    } else {
      message += "something else";
    }
    throw pegtl::parse_error(message + ", found " + found(in), in);
  }
};

struct PNode : pegtl::parse_tree::basic_node<PNode> {
  Kind kind = Kind::script;
  Role role = Role::node;
  template <typename Rule, typename ParseInput, typename... States>
  void start(const ParseInput& in, States&&... st) {
    pegtl::parse_tree::basic_node<PNode>::template start<Rule>(in, st...);
    if constexpr (requires { Rule::role; }) {
      kind = Rule::kind;
      role = Rule::role;
    }
  }
};

template <typename Rule>
struct keep : std::bool_constant<requires { Rule::role; }> {};

// The tokens of a keyword phrase or operator, blanks and comments dropped, upper-cased, with
// a space only between two words: "ONE ROW PER MATCH", "{2,3}?", "<=", "TIMESTAMP(3)".
std::string phrase(std::string_view s) {
  std::string out;
  bool last_word = false;
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c)) != 0) {
      ++i;
    } else if (s.substr(i, 2) == "--") {
      i = s.find('\n', i);
      if (i == std::string_view::npos) break;
    } else if (s.substr(i, 2) == "/*") {
      i = s.find("*/", i + 2);
      if (i == std::string_view::npos) break;
      i += 2;
    } else if (is_ident_char(c)) {
      if (last_word) out.push_back(' ');
      while (i < s.size() && is_ident_char(s[i])) out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(s[i++]))));
      last_word = true;
    } else {
      out.push_back(c);
      ++i;
      last_word = false;
    }
  }
  return out;
}

std::string identifier_text(std::string_view s) {
  if (!s.empty() && s[0] == '`') return std::string(s.substr(1, s.find('`', 1) - 1));
  std::size_t n = 0;
  while (n < s.size() && is_ident_char(s[n])) ++n;
  return std::string(s.substr(0, n));
}

std::string string_text(std::string_view s) {
  std::string out;
  for (std::size_t i = 1; i < s.size(); ++i) {
    if (s[i] != '\'') {
      out.push_back(s[i]);
    } else if (i + 1 < s.size() && s[i + 1] == '\'') {
      out.push_back('\'');
      ++i;
    } else {
      break;
    }
  }
  return out;
}

std::string number_text(std::string_view s) {
  std::size_t n = 0;
  while (n < s.size() && (std::isdigit(static_cast<unsigned char>(s[n])) != 0 || s[n] == '.')) ++n;
  return std::string(s.substr(0, n));
}

Node make(const PNode& p, Kind kind) {
  const auto pos = p.begin();
  return Node{.kind = kind, .text = {}, .line = pos.line, .column = pos.column, .children = {}};
}

Node convert(const PNode& p);

// Operands and operators alternate; folded to the left: a - b - c is (a - b) - c.
Node convert_chain(const PNode& p) {
  Node acc = convert(*p.children.front());
  for (std::size_t i = 1; i + 1 < p.children.size(); i += 2) {
    Node b = make(*p.children[i], Kind::binary);
    b.text = phrase(p.children[i]->string_view());
    b.children.push_back(std::move(acc));
    b.children.push_back(convert(*p.children[i + 1]));
    acc = std::move(b);
  }
  return acc;
}

Node convert(const PNode& p) {
  if (p.role == Role::chain) return convert_chain(p);
  if (p.role == Role::predicate) {
    Node lhs = convert(*p.children.front());
    if (p.children.size() == 1) return lhs;
    Node tail = convert(*p.children[1]);
    tail.children.insert(tail.children.begin(), std::move(lhs));
    return tail;
  }
  Node n = make(p, p.kind);
  switch (p.kind) {
    case Kind::identifier:
      n.text = identifier_text(p.string_view());
      return n;
    case Kind::number:
      n.text = number_text(p.string_view());
      return n;
    case Kind::string:
      n.text = string_text(p.string_view());
      return n;
    case Kind::type:
    case Kind::rows_per_match:
    case Kind::boolean:
      n.text = phrase(p.string_view());
      return n;
    default:
      break;
  }
  std::vector<std::string> words;
  for (const auto& c : p.children) {
    if (c->role == Role::word || c->role == Role::op) {
      words.push_back(phrase(c->string_view()));
    } else if (c->kind == Kind::identifier && c->role == Role::node) {
      words.push_back(identifier_text(c->string_view()));
    } else {
      n.children.push_back(convert(*c));
    }
  }
  const char* sep = p.kind == Kind::column_ref ? "." : " ";
  for (const auto& w : words) n.text += (n.text.empty() ? "" : sep) + w;
  if (p.kind == Kind::join && n.text.empty()) n.text = "INNER";
  if (p.kind == Kind::join && n.text == ",") n.text = "CROSS";
  if (p.kind == Kind::option && !n.children.empty()) {  // 'key' = 'value': the key is the text
    n.text = n.children.front().text;
    n.children.erase(n.children.begin());
  }
  if (p.role == Role::fold && n.text.empty() && n.children.size() == 1) return std::move(n.children.front());
  return n;
}

}  // namespace

std::expected<Node, SyntaxError> parse(std::string_view text) {
  pegtl::memory_input in(text.data(), text.size(), "sql");
  Depth depth;
  try {
    auto root = pegtl::parse_tree::parse<grammar::script, PNode, keep, pegtl::nothing, control>(in, depth);
    if (!root || root->children.size() != 1) {
      return std::unexpected(SyntaxError{.line = 1, .column = 1, .message = "expected a statement"});
    }
    return convert(*root->children.front());
  } catch (const pegtl::parse_error& e) {
    const auto& pos = e.positions().front();
    return std::unexpected(SyntaxError{.line = pos.line, .column = pos.column, .message = std::string(e.message())});
  }
}

}  // namespace rill::sql
