// The dialect's tokens as PEGTL rules: blanks and comments, symbols, keywords, names,
// numbers and strings; each consumes the blanks after it. The statement and expression rules
// are in sql_grammar.hpp.
#pragma once

#include <tao/pegtl.hpp>

#include "rill/sql.hpp"

namespace rill::sql::grammar {

using namespace tao::pegtl;

/// How a stored parse-tree node becomes AST: node (as is), fold (its only child when it has
/// one), chain (operands and operators folded left into binary nodes), predicate (its operand
/// moved into the tail after it), word (its upper-cased text joins the parent's text), op (an
/// operator of a chain or unary node).
enum class Role { node, fold, chain, predicate, word, op };

template <Kind K, Role R = Role::node>
struct ast {
  static constexpr Kind kind = K;
  static constexpr Role role = R;
};
struct word_rule {
  static constexpr Kind kind = Kind::identifier;
  static constexpr Role role = Role::word;
};
struct op_rule {
  static constexpr Kind kind = Kind::identifier;
  static constexpr Role role = Role::op;
};

// --- blanks, tokens, keywords ------------------------------------------------------
struct line_comment : seq<two<'-'>, until<eolf>> {};
struct block_comment_end : string<'*', '/'> {
  static constexpr const char* expected = "the end of the comment '*/'";
};
struct comment_rest : until<block_comment_end> {
  static constexpr const char* expected = "the end of the comment '*/'";
};
struct block_comment : if_must<string<'/', '*'>, comment_rest> {};
struct sp : star<sor<plus<space>, line_comment, block_comment>> {};
struct ident_char : ranges<'a', 'z', 'A', 'Z', '0', '9', '_'> {};

template <char C>
struct sym : seq<one<C>, sp> {
  static constexpr char text[] = {'\'', C, '\'', 0};
  static constexpr const char* expected = text;
};
struct lparen : sym<'('> {};
struct rparen : sym<')'> {};
struct comma : sym<','> {};
struct semi : sym<';'> {};
struct dot : one<'.'> {};

template <typename S>
struct kw_rule : seq<at<S, not_at<ident_char>>, S, sp> {};

// PEGTL's must<R> does not rewind a partly matched R, so an error would point into the middle
// of a token; must_r<R> does (sor rewinds every alternative but its last), and the error
// names R's `expected`.
template <typename R>
struct rewound : sor<R, failure> {};
template <typename... R>
struct must_r : seq<must<rewound<R>>...> {};

#define RILL_SQL_KW(name, text)                         \
  struct kw_##name : kw_rule<TAO_PEGTL_ISTRING(text)> { \
    static constexpr const char* expected = text;       \
  }
RILL_SQL_KW(select, "SELECT");
RILL_SQL_KW(from, "FROM");
RILL_SQL_KW(where, "WHERE");
RILL_SQL_KW(group, "GROUP");
RILL_SQL_KW(by, "BY");
RILL_SQL_KW(having, "HAVING");
RILL_SQL_KW(as, "AS");
RILL_SQL_KW(and, "AND");
RILL_SQL_KW(or, "OR");
RILL_SQL_KW(not, "NOT");
RILL_SQL_KW(case, "CASE");
RILL_SQL_KW(when, "WHEN");
RILL_SQL_KW(then, "THEN");
RILL_SQL_KW(else, "ELSE");
RILL_SQL_KW(end, "END");
RILL_SQL_KW(join, "JOIN");
RILL_SQL_KW(inner, "INNER");
RILL_SQL_KW(left, "LEFT");
RILL_SQL_KW(right, "RIGHT");
RILL_SQL_KW(full, "FULL");
RILL_SQL_KW(outer, "OUTER");
RILL_SQL_KW(cross, "CROSS");
RILL_SQL_KW(on, "ON");
RILL_SQL_KW(insert, "INSERT");
RILL_SQL_KW(into, "INTO");
RILL_SQL_KW(create, "CREATE");
RILL_SQL_KW(table, "TABLE");
RILL_SQL_KW(with, "WITH");
RILL_SQL_KW(watermark, "WATERMARK");
RILL_SQL_KW(for, "FOR");
RILL_SQL_KW(distinct, "DISTINCT");
RILL_SQL_KW(between, "BETWEEN");
RILL_SQL_KW(in, "IN");
RILL_SQL_KW(is, "IS");
RILL_SQL_KW(null, "NULL");
RILL_SQL_KW(true, "TRUE");
RILL_SQL_KW(false, "FALSE");
RILL_SQL_KW(like, "LIKE");
RILL_SQL_KW(interval, "INTERVAL");
RILL_SQL_KW(cast, "CAST");
RILL_SQL_KW(over, "OVER");
RILL_SQL_KW(partition, "PARTITION");
RILL_SQL_KW(order, "ORDER");
RILL_SQL_KW(asc, "ASC");
RILL_SQL_KW(desc, "DESC");
RILL_SQL_KW(rows, "ROWS");
RILL_SQL_KW(range, "RANGE");
RILL_SQL_KW(preceding, "PRECEDING");
RILL_SQL_KW(following, "FOLLOWING");
RILL_SQL_KW(unbounded, "UNBOUNDED");
RILL_SQL_KW(current, "CURRENT");
RILL_SQL_KW(row, "ROW");
RILL_SQL_KW(match_recognize, "MATCH_RECOGNIZE");
RILL_SQL_KW(measures, "MEASURES");
RILL_SQL_KW(one, "ONE");
RILL_SQL_KW(all, "ALL");
RILL_SQL_KW(per, "PER");
RILL_SQL_KW(match, "MATCH");
RILL_SQL_KW(after, "AFTER");
RILL_SQL_KW(skip, "SKIP");
RILL_SQL_KW(past, "PAST");
RILL_SQL_KW(last, "LAST");
RILL_SQL_KW(next, "NEXT");
RILL_SQL_KW(to, "TO");
RILL_SQL_KW(first, "FIRST");
RILL_SQL_KW(pattern, "PATTERN");
RILL_SQL_KW(define, "DEFINE");
RILL_SQL_KW(within, "WITHIN");
RILL_SQL_KW(descriptor, "DESCRIPTOR");
RILL_SQL_KW(union, "UNION");
RILL_SQL_KW(limit, "LIMIT");
#undef RILL_SQL_KW

// Words that cannot be unquoted names (an alias without AS would swallow them otherwise).
struct reserved
    : sor<kw_select, kw_from, kw_where, kw_group, kw_by, kw_having, kw_as, kw_and, kw_or, kw_not, kw_case, kw_when,
          kw_then, kw_else, kw_end, kw_join, kw_inner, kw_left, kw_right, kw_full, kw_outer, kw_cross, kw_on,
          kw_insert, kw_into, kw_create, kw_table, kw_with, kw_distinct, kw_between, kw_in, kw_is, kw_null, kw_true,
          kw_false, kw_like, kw_interval, kw_cast, kw_over, kw_partition, kw_order, kw_match_recognize, kw_measures,
          kw_pattern, kw_define, kw_within, kw_rows, kw_range, kw_union, kw_limit> {};

struct bare_name : seq<not_at<reserved>, ranges<'a', 'z', 'A', 'Z', '_'>, star<ident_char>> {};
struct backquote_end : one<'`'> {
  static constexpr const char* expected = "the closing '`'";
};
struct quoted_name : if_must<one<'`'>, star<not_one<'`', '\n'>>, backquote_end> {};
struct name : seq<sor<quoted_name, bare_name>, sp>, ast<Kind::identifier> {
  static constexpr const char* expected = "a name";
};

struct digits : plus<digit> {};
struct number : seq<digits, opt<one<'.'>, digits>, not_at<ident_char>, sp>, ast<Kind::number> {
  static constexpr const char* expected = "a number";
};
struct quote_end : one<'\''> {
  static constexpr const char* expected = "the closing quote of the string";
};
struct string_lit : seq<if_must<one<'\''>, star<sor<two<'\''>, not_one<'\''>>>, quote_end>, sp>, ast<Kind::string> {
  static constexpr const char* expected = "a string in single quotes";
};

}  // namespace rill::sql::grammar
