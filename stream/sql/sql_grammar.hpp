// The dialect's grammar as PEGTL rules. Each token consumes the blanks and comments after
// it, so a failure is reported at the start of the offending token. A rule that becomes an
// AST node carries `kind` and `role` (how sql_parse.cpp turns its parse-tree node into the
// AST); a rule a must<> can fail on carries `expected`, the error message's subject.
#pragma once

#include <tao/pegtl.hpp>

#include "stream/sql/sql_tokens.hpp"
#include "rill/sql.hpp"

namespace rill::sql::grammar {

// --- expressions ---------------------------------------------------------------------
struct expr;
struct select_stmt;
struct expr_must : must_r<expr> {};

struct time_unit : sor<TAO_PEGTL_ISTRING("MILLISECOND"), TAO_PEGTL_ISTRING("SECOND"), TAO_PEGTL_ISTRING("MINUTE"),
                       TAO_PEGTL_ISTRING("HOUR"), TAO_PEGTL_ISTRING("DAY")> {};
struct unit_word : seq<time_unit, not_at<ident_char>, sp>, word_rule {
  static constexpr const char* expected = "a time unit (MILLISECOND, SECOND, MINUTE, HOUR or DAY)";
};
struct interval : seq<kw_interval, must_r<string_lit>, must_r<unit_word>>, ast<Kind::interval> {
  static constexpr const char* expected = "an INTERVAL";
};

struct type_size : seq<lparen, must_r<number>, star<comma, must_r<number>>, must_r<rparen>> {};
struct sql_type : seq<sor<kw_rule<TAO_PEGTL_ISTRING("STRING")>, kw_rule<TAO_PEGTL_ISTRING("BIGINT")>,
                          kw_rule<TAO_PEGTL_ISTRING("INTEGER")>, kw_rule<TAO_PEGTL_ISTRING("INT")>,
                          kw_rule<TAO_PEGTL_ISTRING("DOUBLE")>, kw_rule<TAO_PEGTL_ISTRING("BOOLEAN")>,
                          seq<kw_rule<TAO_PEGTL_ISTRING("VARCHAR")>, opt<type_size>>,
                          seq<kw_rule<TAO_PEGTL_ISTRING("TIMESTAMP")>, opt<type_size>>>>,
                  ast<Kind::type> {
  static constexpr const char* expected = "a type (STRING, INT, BIGINT, DOUBLE, BOOLEAN or TIMESTAMP(3))";
};

struct expr_list : list_must<expr, comma> {
  static constexpr const char* expected = "an expression";
};
struct distinct_word : seq<kw_distinct>, word_rule {};
struct not_word : seq<kw_not>, word_rule {};
struct asc_desc : sor<kw_asc, kw_desc>, word_rule {};

struct partition_by : seq<kw_partition, must_r<kw_by>, must_r<expr_list>>, ast<Kind::partition_by> {};
struct order_item : seq<expr, opt<asc_desc>>, ast<Kind::order_item> {
  static constexpr const char* expected = "an expression to order by";
};
struct order_by : seq<kw_order, must_r<kw_by>, must_r<order_item>, star<comma, must_r<order_item>>>, ast<Kind::order_by> {};

struct bound_dir : sor<kw_preceding, kw_following>, word_rule {
  static constexpr const char* expected = "PRECEDING or FOLLOWING";
};
struct bound_words : sor<seq<kw_unbounded, must_r<bound_dir>>, seq<kw_current, must_r<kw_row>>>,
                     word_rule {};
struct frame_bound : sor<bound_words, seq<sor<interval, number>, must_r<bound_dir>>>, ast<Kind::frame_bound> {
  static constexpr const char* expected = "a frame bound (UNBOUNDED PRECEDING, CURRENT ROW, N PRECEDING, ...)";
};
struct frame_unit : sor<kw_rows, kw_range>, word_rule {};
struct frame : seq<frame_unit, must_r<sor<seq<kw_between, must_r<frame_bound>, must_r<kw_and>, must_r<frame_bound>>, frame_bound>>>,
               ast<Kind::frame> {};
struct over : seq<kw_over, must_r<lparen>, opt<partition_by>, opt<order_by>, opt<frame>, must_r<rparen>>, ast<Kind::over> {};

struct star_item : sym<'*'>, ast<Kind::star> {};
struct call_distinct : seq<kw_distinct>, ast<Kind::distinct> {};
struct call : seq<name, lparen, opt<sor<star_item, seq<opt<call_distinct>, expr_list>>>, must_r<rparen>, opt<over>>,
              ast<Kind::call> {};

struct when_clause : seq<kw_when, expr_must, must_r<kw_then>, expr_must>, ast<Kind::when> {
  static constexpr const char* expected = "WHEN";
};
struct else_clause : seq<kw_else, expr_must>, ast<Kind::else_branch> {};
struct case_expr : seq<kw_case, opt<not_at<kw_when>, expr>, must_r<when_clause>, star<when_clause>, opt<else_clause>,
                       must_r<kw_end>>,
                   ast<Kind::case_when> {};
struct cast_expr : seq<kw_cast, must_r<lparen>, expr_must, must_r<kw_as>, must_r<sql_type>, must_r<rparen>>, ast<Kind::cast> {};

struct boolean : sor<kw_true, kw_false>, ast<Kind::boolean> {};
struct null_lit : seq<kw_null>, ast<Kind::null> {};
struct column_ref : seq<name, opt<dot, sp, must_r<name>>>, ast<Kind::column_ref> {};
struct subquery : seq<at<kw_select>, select_stmt>, ast<Kind::subquery> {};
struct paren_expr : seq<lparen, sor<subquery, expr>, must_r<rparen>> {};
struct primary : sor<paren_expr, case_expr, cast_expr, interval, number, string_lit, boolean, null_lit, call, column_ref> {
  static constexpr const char* expected = "an expression";
};

struct unary;
struct minus_op : seq<one<'-'>, not_at<one<'-'>>, sp>, op_rule {};
struct negation : seq<minus_op, must_r<unary>>, ast<Kind::unary> {};
struct unary : sor<negation, primary> {
  static constexpr const char* expected = "an expression";
};

struct mul_op : seq<one<'*', '/', '%'>, sp>, op_rule {};
struct multiplicative : seq<unary, star<mul_op, must_r<unary>>>, ast<Kind::binary, Role::chain> {
  static constexpr const char* expected = "an expression";
};
struct add_op : seq<sor<two<'|'>, one<'+'>, seq<one<'-'>, not_at<one<'-'>>>>, sp>, op_rule {};
struct additive : seq<multiplicative, star<add_op, must_r<multiplicative>>>, ast<Kind::binary, Role::chain> {
  static constexpr const char* expected = "an expression";
};

struct cmp_op : seq<sor<string<'<', '='>, string<'>', '='>, string<'<', '>'>, string<'!', '='>, one<'=', '<', '>'>>, sp>,
                op_rule {};
struct compare_tail : seq<cmp_op, must_r<additive>>, ast<Kind::binary> {};
struct between_tail : seq<opt<not_word>, kw_between, must_r<additive>, must_r<kw_and>, must_r<additive>>, ast<Kind::between> {};
struct in_tail : seq<opt<not_word>, kw_in, must_r<lparen>, must_r<expr_list>, must_r<rparen>>, ast<Kind::in_list> {};
struct is_null_tail : seq<kw_is, opt<not_word>, must_r<kw_null>>, ast<Kind::is_null> {};
struct like_tail : seq<opt<not_word>, kw_like, must_r<additive>>, ast<Kind::like> {};
struct predicate : seq<additive, opt<sor<compare_tail, between_tail, in_tail, is_null_tail, like_tail>>>,
                   ast<Kind::binary, Role::predicate> {};

struct not_expr;
struct not_op : seq<kw_not>, op_rule {};
struct negated : seq<not_op, must_r<not_expr>>, ast<Kind::unary> {};
struct not_expr : sor<negated, predicate> {
  static constexpr const char* expected = "an expression";
};
struct and_op : seq<kw_and>, op_rule {};
struct and_expr : seq<not_expr, star<and_op, must_r<not_expr>>>, ast<Kind::binary, Role::chain> {
  static constexpr const char* expected = "an expression";
};
struct or_op : seq<kw_or>, op_rule {};
struct expr : seq<and_expr, star<or_op, must_r<and_expr>>>, ast<Kind::binary, Role::chain> {
  static constexpr const char* expected = "an expression";
};

// --- FROM: tables, window table functions, subqueries, joins, MATCH_RECOGNIZE ----------
struct alias : sor<seq<kw_as, must_r<name>>, name>, ast<Kind::alias> {};
struct table_name : seq<name>, ast<Kind::table> {};
struct table_name_must : table_name {
  static constexpr const char* expected = "a table name";
};
struct window_name : seq<sor<TAO_PEGTL_ISTRING("TUMBLE"), TAO_PEGTL_ISTRING("HOP"), TAO_PEGTL_ISTRING("SESSION"),
                             TAO_PEGTL_ISTRING("CUMULATE")>,
                         not_at<ident_char>, sp>,
                     word_rule {
  static constexpr const char* expected = "a window function (TUMBLE, HOP, SESSION or CUMULATE)";
};
struct descriptor : seq<kw_descriptor, must_r<lparen>, must_r<name>, must_r<rparen>>, ast<Kind::descriptor> {
  static constexpr const char* expected = "DESCRIPTOR(time column)";
};
struct window_tvf : seq<kw_table, must_r<lparen>, must_r<window_name>, must_r<lparen>, must_r<kw_table>, must_r<table_name_must>,
                        must_r<comma>, must_r<descriptor>, star<comma, expr_must>, must_r<rparen>, must_r<rparen>>,
                    ast<Kind::window_tvf> {};
struct derived_table : seq<lparen, must_r<select_stmt>, must_r<rparen>>, ast<Kind::subquery> {};

struct measure : seq<expr, must_r<kw_as>, must_r<name>>, ast<Kind::measure> {
  static constexpr const char* expected = "a measure (expression AS name)";
};
struct measures : seq<kw_measures, must_r<measure>, star<comma, must_r<measure>>>, ast<Kind::measures> {};
struct rows_per_match : sor<seq<kw_one, must_r<kw_row>, must_r<kw_per>, must_r<kw_match>>,
                            seq<kw_all, must_r<kw_rows>, must_r<kw_per>, must_r<kw_match>>>,
                        ast<Kind::rows_per_match> {};
struct past_last_row : seq<kw_past, must_r<kw_last>, must_r<kw_row>>, word_rule {};
struct next_row : seq<kw_next, must_r<kw_row>>, word_rule {};
struct first_word : seq<kw_first>, word_rule {};
struct last_word : seq<kw_last>, word_rule {};
struct to_word : seq<kw_to>, word_rule {};
struct skip_target : sor<next_row, seq<first_word, must_r<name>>, seq<last_word, must_r<name>>, name> {
  static constexpr const char* expected = "NEXT ROW, FIRST var, LAST var or a pattern variable";
};
struct skip_to : sor<past_last_row, seq<to_word, must_r<skip_target>>> {
  static constexpr const char* expected = "PAST LAST ROW, TO NEXT ROW, TO FIRST var, TO LAST var or TO var";
};
struct after_match : seq<kw_after, must_r<kw_match>, must_r<kw_skip>, must_r<skip_to>>, ast<Kind::after_match> {};

struct pattern_alt;
struct pattern_var : seq<name>, ast<Kind::pattern_var> {};
struct pattern_primary : sor<seq<lparen, must_r<pattern_alt>, must_r<rparen>>, pattern_var> {
  static constexpr const char* expected = "a pattern variable or '('";
};
struct quantifier_close : one<'}'> {
  static constexpr const char* expected = "'}'";
};
struct quantifier : seq<sor<one<'*', '+', '?'>, if_must<one<'{'>, sp, opt<digits>, sp, opt<one<','>, sp, opt<digits>, sp>,
                                               quantifier_close>>,
                        opt<one<'?'>>, sp>,
                    word_rule {};
struct pattern_term : seq<pattern_primary, opt<quantifier>>, ast<Kind::quantified, Role::fold> {};
struct pattern_seq : plus<pattern_term>, ast<Kind::pattern_seq, Role::fold> {};
struct pattern_alt : seq<pattern_seq, star<sym<'|'>, must_r<pattern_seq>>>, ast<Kind::pattern_alt, Role::fold> {
  static constexpr const char* expected = "a pattern";
};
struct within : seq<kw_within, must_r<interval>>, ast<Kind::within> {};
struct pattern_clause : seq<kw_pattern, must_r<lparen>, must_r<pattern_alt>, must_r<rparen>, opt<within>>, ast<Kind::pattern> {
  static constexpr const char* expected = "PATTERN";
};
struct define_item : seq<name, must_r<kw_as>, expr_must>, ast<Kind::define_item> {
  static constexpr const char* expected = "a definition (variable AS condition)";
};
struct define_clause : seq<kw_define, must_r<define_item>, star<comma, must_r<define_item>>>, ast<Kind::define> {
  static constexpr const char* expected = "DEFINE";
};
struct match_recognize : seq<kw_match_recognize, must_r<lparen>, opt<partition_by>, opt<order_by>, opt<measures>,
                             opt<rows_per_match>, opt<after_match>, must_r<pattern_clause>, must_r<define_clause>,
                             must_r<rparen>>,
                         ast<Kind::match_recognize> {};

struct table_ref : seq<sor<window_tvf, derived_table, table_name>, opt<match_recognize>, opt<alias>>,
                   ast<Kind::source, Role::fold> {
  static constexpr const char* expected = "a table, TABLE(window function) or (subquery)";
};
struct join_words : sor<kw_inner, seq<kw_left, opt<kw_outer>>, seq<kw_right, opt<kw_outer>>, seq<kw_full, opt<kw_outer>>,
                        kw_cross>,
                    word_rule {};
struct on_clause : seq<kw_on, expr_must>, ast<Kind::on> {};
struct join_clause : seq<opt<join_words>, kw_join, must_r<table_ref>, opt<on_clause>>, ast<Kind::join> {};
struct comma_word : one<','>, word_rule {};
struct comma_join : seq<comma_word, sp, must_r<table_ref>>, ast<Kind::join> {};
struct from_clause : seq<kw_from, must_r<table_ref>, star<sor<join_clause, comma_join>>>, ast<Kind::from> {};

// --- statements ------------------------------------------------------------------------
struct item : sor<seq<star_item>, seq<expr, opt<alias>>>, ast<Kind::item> {
  static constexpr const char* expected = "a select item";
};
struct select_list : seq<must_r<item>, star<comma, must_r<item>>>, ast<Kind::select_list> {};
struct where : seq<kw_where, expr_must>, ast<Kind::where> {};
struct group_by : seq<kw_group, must_r<kw_by>, must_r<expr_list>>, ast<Kind::group_by> {};
struct having : seq<kw_having, expr_must>, ast<Kind::having> {};
struct select_stmt : seq<kw_select, opt<distinct_word>, must_r<select_list>, opt<from_clause>, opt<where>, opt<group_by>,
                         opt<having>, opt<order_by>>,
                     ast<Kind::select> {
  static constexpr const char* expected = "SELECT";
};

struct watermark : seq<kw_watermark, must_r<kw_for>, must_r<name>, must_r<kw_as>, expr_must>, ast<Kind::watermark> {};
struct column_def : seq<name, must_r<sql_type>>, ast<Kind::column_def> {};
struct table_element : sor<watermark, column_def> {
  static constexpr const char* expected = "a column (name type) or WATERMARK FOR";
};
struct option : seq<string_lit, must_r<sym<'='>>, must_r<string_lit>>, ast<Kind::option> {
  static constexpr const char* expected = "an option ('key' = 'value')";
};
struct with_options : seq<kw_with, must_r<lparen>, must_r<option>, star<comma, must_r<option>>, must_r<rparen>>,
                      ast<Kind::with_options> {};
struct create_table : seq<kw_create, must_r<kw_table>, must_r<name>, must_r<lparen>, must_r<table_element>,
                          star<comma, must_r<table_element>>,
                          must_r<rparen>, opt<with_options>>,
                      ast<Kind::create_table> {};
struct insert : seq<kw_insert, must_r<kw_into>, must_r<name>, must_r<select_stmt>>, ast<Kind::insert> {};

struct statement : sor<create_table, insert, select_stmt> {
  static constexpr const char* expected = "a statement (CREATE TABLE, INSERT INTO or SELECT)";
};
struct end_of_script : eof {
  static constexpr const char* expected = "';' or the end of the script";
};
struct script : seq<sp, must_r<statement>, star<semi, opt<statement>>, must_r<end_of_script>>, ast<Kind::script> {};

}  // namespace rill::sql::grammar
