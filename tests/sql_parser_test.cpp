// The streaming SQL parser: Nexmark q0-q8 (perf/nexmark/q*.sql) parse to the expected tree
// shapes; operator precedence; every MATCH_RECOGNIZE clause, quantifier and skip strategy;
// and a corpus of wrong scripts, each with the line:column and message it must get.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "rill/sql.hpp"

using rill::sql::Kind;
using rill::sql::Node;

namespace {

std::string read_query(int n) {
  std::ifstream f(std::string(RILL_NEXMARK_DIR) + "/q" + std::to_string(n) + ".sql");
  REQUIRE(f.good());
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

Node parse_ok(const std::string& sql) {
  auto r = rill::sql::parse(sql);
  if (!r) FAIL_CHECK("parse failed: " << r.error().to_string());
  REQUIRE(r.has_value());
  return std::move(*r);
}

// The dump of the one statement of a single-statement script.
std::string statement(const std::string& sql) {
  const Node n = parse_ok(sql);
  REQUIRE(n.children.size() == 1);
  return rill::sql::dump(n.children.front());
}

void collect(const Node& n, Kind kind, std::vector<const Node*>& out) {
  if (n.kind == kind) out.push_back(&n);
  for (const auto& c : n.children) collect(c, kind, out);
}
std::vector<const Node*> all(const Node& n, Kind kind) {
  std::vector<const Node*> out;
  collect(n, kind, out);
  return out;
}

// The last statement (the INSERT) of a Nexmark script, after its CREATE TABLEs.
const Node& insert_of(const Node& script) {
  REQUIRE(!script.children.empty());
  const Node& last = script.children.back();
  REQUIRE(last.kind == Kind::insert);
  return last;
}

}  // namespace

TEST_CASE("the Nexmark scripts declare their sources with watermarks and options") {
  const Node q3 = parse_ok(read_query(3));
  REQUIRE(q3.children.size() == 4);  // person, auction, the sink, the insert
  const Node& person = q3.children[0];
  CHECK(person.kind == Kind::create_table);
  CHECK(person.text == "person");
  CHECK(all(person, Kind::column_def).size() == 8);
  const auto wm = all(person, Kind::watermark);
  REQUIRE(wm.size() == 1);
  CHECK(rill::sql::dump(*wm[0]) ==
        R"((watermark "dateTime" (binary "-" (column_ref "dateTime") (interval "SECOND" (string "4")))))");
  CHECK(rill::sql::dump(person.children.back()) ==
        R"((with_options (option "topic" (string "nexmark/person")) (option "format" (string "json"))))");
  CHECK(rill::sql::dump(person.children[6]) == R"x((column_def "dateTime" (type "TIMESTAMP(3)")))x");
}

TEST_CASE("q0-q2: projection, arithmetic and a filter, tree for tree") {
  CHECK(rill::sql::dump(insert_of(parse_ok(read_query(0)))) ==
        R"((insert "nexmark_q0" (select (select_list (item (column_ref "auction")) (item (column_ref "bidder")) )"
        R"((item (column_ref "price")) (item (column_ref "dateTime")) (item (column_ref "extra"))) (from (table "bid")))))");
  CHECK(rill::sql::dump(insert_of(parse_ok(read_query(1)))) ==
        R"((insert "nexmark_q1" (select (select_list (item (column_ref "auction")) (item (column_ref "bidder")) )"
        R"((item (binary "*" (number "0.908") (column_ref "price")) (alias "price")) (item (column_ref "dateTime")) )"
        R"((item (column_ref "extra"))) (from (table "bid")))))");
  CHECK(rill::sql::dump(insert_of(parse_ok(read_query(2)))) ==
        R"((insert "nexmark_q2" (select (select_list (item (column_ref "auction")) (item (column_ref "price"))) )"
        R"((from (table "bid")) (where (binary "=" (call "MOD" (column_ref "auction") (number "123")) (number "0"))))))");
}

TEST_CASE("q3: an inner join with a filter of ORs under an AND") {
  const Node script = parse_ok(read_query(3));
  const Node& ins = insert_of(script);
  const auto joins = all(ins, Kind::join);
  REQUIRE(joins.size() == 1);
  CHECK(joins[0]->text == "INNER");
  CHECK(rill::sql::dump(*joins[0]) ==
        R"((join "INNER" (source (table "person") (alias "P")) (on (binary "=" (column_ref "A.seller") (column_ref "P.id")))))");
  const auto where = all(ins, Kind::where);
  REQUIRE(where.size() == 1);
  const Node& cond = where[0]->children.front();
  CHECK(cond.text == "AND");
  CHECK(cond.children[1].text == "OR");
  CHECK(cond.children[1].children[0].text == "OR");  // (a OR b) OR c: left-associative
}

TEST_CASE("q4: a grouped subquery over a comma join with BETWEEN, grouped again") {
  const Node script = parse_ok(read_query(4));
  const Node& ins = insert_of(script);
  const auto subqueries = all(ins, Kind::subquery);
  REQUIRE(subqueries.size() == 1);
  const auto joins = all(ins, Kind::join);
  REQUIRE(joins.size() == 1);
  CHECK(joins[0]->text == "CROSS");
  const auto between = all(ins, Kind::between);
  REQUIRE(between.size() == 1);
  CHECK(rill::sql::dump(*between[0]) ==
        R"((between (column_ref "B.dateTime") (column_ref "A.dateTime") (column_ref "A.expires")))");
  CHECK(all(ins, Kind::group_by).size() == 2);
  const auto calls = all(ins, Kind::call);
  REQUIRE(calls.size() == 2);
  CHECK(calls[0]->text == "AVG");
  CHECK(calls[1]->text == "MAX");
}

TEST_CASE("q5: two HOP windows of 2 s slide and 10 s size, joined on three conditions") {
  const Node script = parse_ok(read_query(5));
  const Node& ins = insert_of(script);
  const auto hops = all(ins, Kind::window_tvf);
  REQUIRE(hops.size() == 2);
  for (const Node* h : hops) {
    CHECK(rill::sql::dump(*h) ==
          R"((window_tvf "HOP" (table "bid") (descriptor "dateTime") (interval "SECOND" (string "2")) (interval "SECOND" (string "10"))))");
  }
  const auto joins = all(ins, Kind::join);
  REQUIRE(joins.size() == 1);
  const auto on = all(*joins[0], Kind::on);
  REQUIRE(on.size() == 1);
  const Node& cond = on[0]->children.front();
  CHECK(cond.text == "AND");
  CHECK(cond.children[1].text == ">=");
  CHECK(all(ins, Kind::subquery).size() == 3);
  CHECK(all(ins, Kind::star).size() == 2);  // COUNT(*) twice
}

TEST_CASE("q6: ROW_NUMBER and a ROWS frame in OVER windows") {
  const Node script = parse_ok(read_query(6));
  const Node& ins = insert_of(script);
  const auto overs = all(ins, Kind::over);
  REQUIRE(overs.size() == 2);
  CHECK(rill::sql::dump(*overs[0]) ==
        R"((over (partition_by (column_ref "Q.seller")) (order_by (order_item (column_ref "Q.dateTime"))) )"
        R"((frame "ROWS" (frame_bound "PRECEDING" (number "10")) (frame_bound "CURRENT ROW"))))");
  CHECK(rill::sql::dump(*overs[1]) ==
        R"((over (partition_by (column_ref "A.id") (column_ref "A.seller")) (order_by (order_item "DESC" (column_ref "B.price")))))");
  const auto calls = all(ins, Kind::call);
  REQUIRE(calls.size() == 2);
  CHECK(calls[1]->text == "ROW_NUMBER");
}

TEST_CASE("q7: a TUMBLE window joined back with BETWEEN on interval arithmetic") {
  const Node script = parse_ok(read_query(7));
  const Node& ins = insert_of(script);
  const auto tumbles = all(ins, Kind::window_tvf);
  REQUIRE(tumbles.size() == 1);
  CHECK(tumbles[0]->text == "TUMBLE");
  const auto between = all(ins, Kind::between);
  REQUIRE(between.size() == 1);
  CHECK(rill::sql::dump(between[0]->children[1]) ==
        R"((binary "-" (column_ref "B1.dateTime") (interval "SECOND" (string "10"))))");
}

TEST_CASE("q8: two TUMBLE windows joined on id and window bounds") {
  const Node script = parse_ok(read_query(8));
  const Node& ins = insert_of(script);
  const auto tumbles = all(ins, Kind::window_tvf);
  REQUIRE(tumbles.size() == 2);
  CHECK(tumbles[0]->children[0].text == "person");
  CHECK(tumbles[1]->children[0].text == "auction");
  const auto joins = all(ins, Kind::join);
  REQUIRE(joins.size() == 1);
  CHECK(all(*joins[0], Kind::binary).size() == 5);  // three = under two AND
}

TEST_CASE("precedence: * over +, comparison over NOT over AND over OR, left to right") {
  CHECK(statement("SELECT a + b * c - d FROM t") ==
        R"((select (select_list (item (binary "-" (binary "+" (column_ref "a") (binary "*" (column_ref "b") (column_ref "c"))) (column_ref "d")))) (from (table "t"))))");
  CHECK(statement("select x from t where not a = 1 and b or c") ==
        R"((select (select_list (item (column_ref "x"))) (from (table "t")) (where (binary "OR" (binary "AND" (unary "NOT" (binary "=" (column_ref "a") (number "1"))) (column_ref "b")) (column_ref "c")))))");
  CHECK(statement("SELECT -(a || 'x') AS y, CASE k WHEN 1 THEN 'one' END FROM t -- trailing comment") ==
        R"((select (select_list (item (unary "-" (binary "||" (column_ref "a") (string "x"))) (alias "y")) (item (case_when (column_ref "k") (when (number "1") (string "one"))))) (from (table "t"))))");
  CHECK(statement("SELECT 'it''s', `select` FROM /* c */ t") ==
        R"((select (select_list (item (string "it's")) (item (column_ref "select"))) (from (table "t"))))");
}

TEST_CASE("window table functions: SESSION and CUMULATE with their intervals") {
  CHECK(statement("SELECT * FROM TABLE(SESSION(TABLE s, DESCRIPTOR(ts), INTERVAL '5' MINUTE))") ==
        R"((select (select_list (item (star))) (from (window_tvf "SESSION" (table "s") (descriptor "ts") (interval "MINUTE" (string "5"))))))");
  CHECK(statement("SELECT * FROM TABLE(cumulate(TABLE s, DESCRIPTOR(ts), INTERVAL '1' MINUTE, INTERVAL '1' HOUR)) w") ==
        R"((select (select_list (item (star))) (from (source (window_tvf "CUMULATE" (table "s") (descriptor "ts") (interval "MINUTE" (string "1")) (interval "HOUR" (string "1"))) (alias "w")))))");
}

TEST_CASE("MATCH_RECOGNIZE: every clause, in order") {
  const std::string sql = R"(
SELECT * FROM ticker MATCH_RECOGNIZE (
  PARTITION BY symbol ORDER BY rowtime
  MEASURES FIRST(A.price) AS start_price, LAST(C.price) AS end_price
  ALL ROWS PER MATCH
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A B+? (C | D){2,} E*) WITHIN INTERVAL '1' HOUR
  DEFINE B AS B.price < PREV(B.price), C AS C.price > 10
) AS T)";
  const Node n = parse_ok(sql);
  const auto mr = all(n, Kind::match_recognize);
  REQUIRE(mr.size() == 1);
  CHECK(rill::sql::dump(*mr[0]) ==
        R"((match_recognize (partition_by (column_ref "symbol")) (order_by (order_item (column_ref "rowtime"))) )"
        R"((measures (measure "start_price" (call "FIRST" (column_ref "A.price"))) (measure "end_price" (call "LAST" (column_ref "C.price")))) )"
        R"((rows_per_match "ALL ROWS PER MATCH") (after_match "PAST LAST ROW") )"
        R"((pattern (pattern_seq (pattern_var "A") (quantified "+?" (pattern_var "B")) (quantified "{2,}" (pattern_alt (pattern_var "C") (pattern_var "D"))) (quantified "*" (pattern_var "E"))) (within (interval "HOUR" (string "1")))) )"
        R"((define (define_item "B" (binary "<" (column_ref "B.price") (call "PREV" (column_ref "B.price")))) (define_item "C" (binary ">" (column_ref "C.price") (number "10"))))))");
}

TEST_CASE("MATCH_RECOGNIZE: quantifiers greedy and reluctant, and each skip strategy") {
  const std::vector<std::pair<std::string, std::string>> quantifiers{
      {"A*", "*"}, {"A*?", "*?"}, {"A+", "+"}, {"A+?", "+?"}, {"A?", "?"}, {"A??", "??"},
      {"A{3}", "{3}"}, {"A{2,4}", "{2,4}"}, {"A{ 2 , }?", "{2,}?"}, {"A{,4}", "{,4}"}};
  for (const auto& [pattern, text] : quantifiers) {
    const Node n = parse_ok("SELECT * FROM t MATCH_RECOGNIZE (PATTERN (" + pattern + ") DEFINE A AS x > 0)");
    const auto q = all(n, Kind::quantified);
    REQUIRE(q.size() == 1);
    CHECK(q[0]->text == text);
  }
  const std::vector<std::pair<std::string, std::string>> skips{{"PAST LAST ROW", "PAST LAST ROW"},
                                                               {"TO NEXT ROW", "TO NEXT ROW"},
                                                               {"TO FIRST B", "TO FIRST B"},
                                                               {"to last B", "TO LAST B"},
                                                               {"TO B", "TO B"}};
  for (const auto& [skip, text] : skips) {
    const Node n = parse_ok("SELECT * FROM t MATCH_RECOGNIZE (ONE ROW PER MATCH AFTER MATCH SKIP " + skip +
                            " PATTERN (A B) DEFINE A AS x > 0)");
    const auto a = all(n, Kind::after_match);
    REQUIRE(a.size() == 1);
    CHECK(a[0]->text == text);
  }
}

TEST_CASE("wrong scripts get the line:column of the offending token and what was expected") {
  const std::vector<std::pair<std::string, std::string>> corpus{
      {"", "1:1: expected a statement (CREATE TABLE, INSERT INTO or SELECT), found the end of the script"},
      {"SELEKT a FROM t", "1:1: expected a statement (CREATE TABLE, INSERT INTO or SELECT), found 'SELEKT'"},
      {"SELECT FROM t", "1:8: expected a select item, found 'FROM'"},
      {"SELECT a FROM t WHERE", "1:22: expected an expression, found the end of the script"},
      {"SELECT a FROM t WHERE x = (1 + 2", "1:33: expected ')', found the end of the script"},
      {"SELECT a,\n  b +\n  FROM t", "3:3: expected an expression, found 'FROM'"},
      {"SELECT CASE WHEN a THEN 1 ELSE 2 FROM t", "1:34: expected END, found 'FROM'"},
      {"SELECT CASE a END FROM t", "1:15: expected WHEN, found 'END'"},
      {"SELECT CAST(a BIGINT) FROM t", "1:15: expected AS, found 'BIGINT'"},
      {"CREATE TABLE t (a INTEGR)",
       "1:19: expected a type (STRING, INT, BIGINT, DOUBLE, BOOLEAN or TIMESTAMP(3)), found 'INTEGR'"},
      {"CREATE t (a INT)", "1:8: expected TABLE, found 't'"},
      {"CREATE TABLE t (a INT,\n  WATERMARK ts AS ts)", "2:13: expected FOR, found 'ts'"},
      {"CREATE TABLE t (a INT) WITH ('k' 'v')", "1:34: expected '=', found '''"},
      {"CREATE TABLE t (a INT) WITH (k = 'v')", "1:30: expected an option ('key' = 'value'), found 'k'"},
      {"INSERT sink SELECT a FROM t", "1:8: expected INTO, found 'sink'"},
      {"INSERT INTO sink VALUES (1)", "1:18: expected SELECT, found 'VALUES'"},
      {"SELECT a FROM t; SELECT b FROM t WHERE c >", "1:43: expected an expression, found the end of the script"},
      {"SELECT a FROM t GROUP a", "1:23: expected BY, found 'a'"},
      {"SELECT a FROM t x y", "1:19: expected ';' or the end of the script, found 'y'"},
      {"SELECT a FROM t JOIN ON a = b", "1:22: expected a table, TABLE(window function) or (subquery), found 'ON'"},
      {"SELECT 'abc FROM t", "1:19: expected the closing quote of the string, found the end of the script"},
      {"SELECT `abc FROM t", "1:19: expected the closing '`', found the end of the script"},
      {"SELECT a FROM t /* no end", "1:26: expected the end of the comment '*/', found the end of the script"},
      {"SELECT x FROM t WHERE a BETWEEN 1 2", "1:35: expected AND, found '2'"},
      {"SELECT x FROM t WHERE a IS 1", "1:28: expected NULL, found '1'"},
      {"SELECT x FROM t WHERE a IN 1", "1:28: expected '(', found '1'"},
      {"SELECT INTERVAL 5 SECOND FROM t", "1:17: expected a string in single quotes, found '5'"},
      {"SELECT INTERVAL '5' WEEK FROM t",
       "1:21: expected a time unit (MILLISECOND, SECOND, MINUTE, HOUR or DAY), found 'WEEK'"},
      {"SELECT a FROM TABLE(SLIDE(TABLE t, DESCRIPTOR(ts)))",
       "1:21: expected a window function (TUMBLE, HOP, SESSION or CUMULATE), found 'SLIDE'"},
      {"SELECT a FROM TABLE(TUMBLE(t, DESCRIPTOR(ts)))", "1:28: expected TABLE, found 't'"},
      {"SELECT a FROM TABLE(TUMBLE(TABLE t, ts))", "1:37: expected DESCRIPTOR(time column), found 'ts'"},
      {"SELECT a FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts) INTERVAL '1' SECOND))", "1:52: expected ')', found 'INTERVAL'"},
      {"SELECT AVG(x) OVER (ROWS 3) FROM t", "1:27: expected PRECEDING or FOLLOWING, found ')'"},
      {"SELECT AVG(x) OVER (ROWS BETWEEN UNBOUNDED AND CURRENT ROW) FROM t",
       "1:44: expected PRECEDING or FOLLOWING, found 'AND'"},
      {"SELECT * FROM t MATCH_RECOGNIZE (DEFINE A AS x > 0)", "1:34: expected PATTERN, found 'DEFINE'"},
      {"SELECT * FROM t MATCH_RECOGNIZE (PATTERN (A B) )", "1:48: expected DEFINE, found ')'"},
      {"SELECT * FROM t MATCH_RECOGNIZE (PATTERN () DEFINE A AS x)", "1:43: expected a pattern, found ')'"},
      {"SELECT * FROM t MATCH_RECOGNIZE (PATTERN (A{2) DEFINE A AS x)", "1:46: expected '}', found ')'"},
      {"SELECT * FROM t MATCH_RECOGNIZE (PATTERN (A) DEFINE A x)", "1:55: expected AS, found 'x'"},
      {"SELECT * FROM t MATCH_RECOGNIZE (MEASURES FIRST(A.p) PATTERN (A) DEFINE A AS x)",
       "1:54: expected AS, found 'PATTERN'"},
      {"SELECT * FROM t MATCH_RECOGNIZE (AFTER MATCH SKIP TO PATTERN (A) DEFINE A AS x)",
       "1:54: expected NEXT ROW, FIRST var, LAST var or a pattern variable, found 'PATTERN'"},
      {"SELECT * FROM t MATCH_RECOGNIZE (ONE ROWS PER MATCH PATTERN (A) DEFINE A AS x)",
       "1:38: expected ROW, found 'ROWS'"},
      {"SELECT * FROM t MATCH_RECOGNIZE (PATTERN (A) WITHIN '1' HOUR DEFINE A AS x)",
       "1:53: expected an INTERVAL, found '''"},
      {"SELECT a FROM t\n\tWHERE a = 1 AND", "2:17: expected an expression, found the end of the script"},
      {"SELECT a FROM t WHERE a = \x01", "1:27: expected an expression, found byte 0x01"},
  };
  for (const auto& [sql, expected] : corpus) {
    CAPTURE(sql);
    const auto r = rill::sql::parse(sql);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().to_string() == expected);
  }
}

TEST_CASE("nesting is bounded: deep input is an error, not a stack overflow") {
  const std::string ok = "SELECT " + std::string(40, '(') + "1" + std::string(40, ')') + " FROM t";
  CHECK(rill::sql::parse(ok).has_value());
  std::string minus_chain = "SELECT ";  // "- - - ... 1" ("--" would start a comment)
  for (int i = 0; i < 50000; ++i) minus_chain += "- ";
  for (const std::string& deep : {"SELECT " + std::string(100000, '(') + "1", minus_chain + "1",
                                  "SELECT " + [] {
                                    std::string s;
                                    for (int i = 0; i < 50000; ++i) s += "NOT ";
                                    return s;
                                  }() + "a",
                                  "SELECT * FROM t MATCH_RECOGNIZE (PATTERN (" + std::string(100000, '(')}) {
    const auto r = rill::sql::parse(deep);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == "nesting deeper than 64 levels");
  }
}
