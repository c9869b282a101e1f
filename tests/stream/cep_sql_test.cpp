// MATCH_RECOGNIZE text -> SQL parser -> compile_match_recognize -> CEP operator, against
// the hand-derived matches of cep_test.cpp (the same rows and reasoning), plus the errors
// that unsupported or wrong expressions get, with their line:column.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "rill/stream/cep_sql.hpp"

#include <doctest/doctest.h>

#include "stream/cep_harness.hpp"

using namespace ceptest;
using Spans = std::vector<std::pair<TimeMs, TimeMs>>;

namespace {

const rill::sql::Node* find_mr(const rill::sql::Node& n) {
  if (n.kind == rill::sql::Kind::match_recognize) return &n;
  for (const auto& c : n.children) {
    if (const auto* f = find_mr(c)) return f;
  }
  return nullptr;
}

// The MATCH_RECOGNIZE of `sql` compiled over columns {"v", "w"}; the parse tree is kept
// alive beside it (the pattern does not refer to it, but errors name its positions).
rill::Result<cep::SqlPattern> compile(const std::string& sql) {
  auto script = rill::sql::parse(sql);
  REQUIRE_MESSAGE(script.has_value(), (script ? "" : script.error().to_string()));
  const auto* mr = find_mr(*script);
  REQUIRE(mr != nullptr);
  return cep::compile_match_recognize(*mr, {"v", "w"});
}

struct Output {
  std::vector<Got> matches;
  std::vector<std::vector<cep::Value>> rows;
};

Output run_sql(const std::string& sql, const std::vector<cep::Event>& events) {
  auto q = compile(sql);
  REQUIRE_MESSAGE(q.has_value(), (q ? "" : q.error().message()));
  Output out;
  cep::Options options;
  options.rows_per_match = q->rows_per_match;
  options.measures = q->measures;
  options.prev_rows = q->prev_rows;
  auto op = cep::Operator::create(std::move(q->pattern), std::move(options),
                                  {.match = [&](const cep::Match& m) { out.matches.push_back(got_of(m)); },
                                   .row = [&](const cep::MatchRow& r) { out.rows.push_back(r.measures); }});
  REQUIRE_MESSAGE(op.has_value(), (op ? "" : op.error().message()));
  for (const auto& e : events) op->process(e);
  op->finish();
  return out;
}

std::string mr(const std::string& body) {
  return "SELECT * FROM t MATCH_RECOGNIZE (PARTITION BY k ORDER BY ts " + body + ")";
}

}  // namespace

TEST_CASE("SQL skip strategies give cep_test's hand-derived matches") {
  // Rows t1..t6: 1 2 3 15 4 16; A any, B v < 10 (greedy +), C v >= 10 (see cep_test.cpp).
  const auto rows = series("k", {1, 2, 3, 15, 4, 16});
  auto with = [&](const std::string& skip) {
    return spans(
        run_sql(mr("AFTER MATCH SKIP " + skip + " PATTERN (A B+ C) DEFINE B AS B.v < 10, C AS v >= 10"), rows).matches);
  };
  CHECK(with("PAST LAST ROW") == Spans{{1, 4}});
  CHECK(with("TO NEXT ROW") == Spans{{1, 4}, {2, 4}, {4, 6}});
  CHECK(with("TO FIRST B") == Spans{{1, 4}, {2, 4}, {4, 6}});
  CHECK(with("TO LAST B") == Spans{{1, 4}, {4, 6}});
  CHECK(with("TO B") == Spans{{1, 4}, {4, 6}});  // SQL: TO B means TO LAST B
  CHECK(with("TO FIRST C") == Spans{{1, 4}, {4, 6}});
}

TEST_CASE("SQL greedy and reluctant quantifiers, with measures") {
  // Rows 1 2 20 3 20 4: greedy t1..t5, reluctant t1..t3 (see cep_test.cpp).
  const auto rows = series("k", {1, 2, 20, 3, 20, 4});
  const std::string measures =
      "MEASURES FIRST(A.v) AS a, LAST(C.v) AS c, COUNT(B.v) AS nb, MATCH_NUMBER() AS n, CLASSIFIER() AS cls, "
      "SUM(v) AS total ONE ROW PER MATCH ";
  auto greedy = run_sql(mr(measures + "PATTERN (A B+ C) DEFINE A AS v < 10, C AS C.v >= 20"), rows);
  CHECK(spans(greedy.matches) == Spans{{1, 5}});
  REQUIRE(greedy.rows.size() == 1);
  // a = 1, c = 20, B took t2..t4 (3 rows), first match, last row's variable C, 1+2+20+3+20.
  CHECK(greedy.rows[0] == std::vector<cep::Value>{1.0, 20.0, std::int64_t{3}, std::int64_t{1}, std::string("C"), 46.0});
  auto reluctant = run_sql(mr(measures + "PATTERN (A B+? C) DEFINE A AS v < 10, C AS C.v >= 20"), rows);
  CHECK(spans(reluctant.matches) == Spans{{1, 3}});
}

TEST_CASE("SQL PREV, aggregates over a variable, WITHIN and ALL ROWS PER MATCH") {
  // The V of cep_test.cpp: 10 9 8 9 11, S D+ U+ with D below and U above the previous row.
  auto v = run_sql(mr("MEASURES FIRST(S.v) AS start, LAST(D.v) AS bottom, LAST(U.v) AS top ALL ROWS PER MATCH "
                      "PATTERN (S D+ U+) DEFINE D AS v < PREV(v), U AS U.v > PREV(U.v, 1)"),
                   series("k", {10, 9, 8, 9, 11}));
  REQUIRE(v.rows.size() == 5);
  // Running measures: at the 2nd row bottom 9 and no U yet (NULL); at the last, 10 / 8 / 11.
  CHECK(v.rows[1] == std::vector<cep::Value>{10.0, 9.0, cep::Value{}});
  CHECK(v.rows[4] == std::vector<cep::Value>{10.0, 8.0, 11.0});

  // Rows 1 2 3 10 4: A+ while the average of A stays <= 2 (1, 1.5, 2; adding 10 makes
  // 4), then B = 10: one match t1..t4 as A A A B.
  auto avg = run_sql(mr("PATTERN (A+ B) DEFINE A AS AVG(A.v) <= 2, B AS v >= 10"), series("k", {1, 2, 3, 10, 4}));
  REQUIRE(avg.matches.size() == 1);
  CHECK(avg.matches[0].rows == std::vector<std::pair<TimeMs, std::string>>{{1, "A"}, {2, "A"}, {3, "A"}, {4, "B"}});

  // PREV(v, 3) of a match's first row reaches 3 rows before it (prev_rows follows the SQL):
  // rows 5 1 1 6: A is a row above the one 3 back; only t4 (6 > 5) is.
  auto back = compile(mr("PATTERN (A) DEFINE A AS v > PREV(v, 3)"));
  REQUIRE(back.has_value());
  CHECK(back->prev_rows == 3);
  CHECK(spans(run_sql(mr("PATTERN (A) DEFINE A AS v > PREV(v, 3)"), series("k", {5, 1, 1, 6})).matches) ==
        Spans{{4, 4}});

  // WITHIN: A at t0, B 12 ms later is too late for 10 ms; t20 / t25 match (cep_test.cpp).
  auto within = run_sql(mr("PATTERN (A B) WITHIN INTERVAL '10' MILLISECOND DEFINE A AS v < 10, B AS v >= 10"),
                        {ev("k", 0, 1), ev("k", 12, 20), ev("k", 20, 3), ev("k", 25, 30)});
  CHECK(spans(within.matches) == Spans{{20, 25}});

  // NULL logic: w is absent on every row (one value only), so `w > 1` is NULL; OR TRUE
  // still holds, AND TRUE does not, IS NULL does.
  const auto rows = series("k", {5});
  CHECK(run_sql(mr("PATTERN (A) DEFINE A AS w > 1 OR v = 5"), rows).matches.size() == 1);
  CHECK(run_sql(mr("PATTERN (A) DEFINE A AS w > 1 AND v = 5"), rows).matches.empty());
  CHECK(run_sql(mr("PATTERN (A) DEFINE A AS w IS NULL AND v BETWEEN 4 AND 6 AND v IN (1, 5)"), rows).matches.size() ==
        1);
}

TEST_CASE("unsupported or wrong MATCH_RECOGNIZE gets an error at its line and column") {
  auto error_of = [](const std::string& body) {
    auto q = compile(mr(body));
    return q ? std::string("compiled") : q.error().message();
  };
  // mr() puts the body at column 61 of line 1, so x is at 85.
  CHECK(error_of("PATTERN (A) DEFINE A AS x > 1").find("1:85: unknown column x") != std::string::npos);
  CHECK(error_of("PATTERN (A B) DEFINE B AS v < PREV(A.v)").find("PREV of another variable") != std::string::npos);
  CHECK(error_of("PATTERN (A) DEFINE A AS NEXT(v) > 1").find("function NEXT is not supported") != std::string::npos);
  CHECK(error_of("PATTERN (A) DEFINE A AS v = 'x'").find("string is not supported") != std::string::npos);
  CHECK(error_of("PATTERN (A) DEFINE A AS MATCH_NUMBER() > 1").find("MATCH_NUMBER is not supported") !=
        std::string::npos);
  CHECK(error_of("PATTERN (A) DEFINE B AS v > 1").find("which PATTERN does not use") != std::string::npos);
  CHECK(error_of("PATTERN (A) DEFINE A AS Z.v > 1").find("unknown pattern variable Z") != std::string::npos);
  CHECK(error_of("PATTERN (A{3,2}) DEFINE A AS v > 1").find("matches no row") != std::string::npos);
  CHECK(error_of("AFTER MATCH SKIP TO FIRST Q PATTERN (A) DEFINE A AS v > 1").find("SKIP TO Q") != std::string::npos);
  CHECK(error_of("PATTERN (A) WITHIN INTERVAL '1.5' SECOND DEFINE A AS v > 1").find("WITHIN needs") !=
        std::string::npos);
}
