// The CEP operator against matches derived by hand (each expectation says why): greedy and
// reluctant quantifiers, every skip strategy, alternation, WITHIN expiry, partitions,
// out-of-order and late events, measures and ALL ROWS PER MATCH.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>

#include "stream/cep_harness.hpp"

using namespace ceptest;
using namespace std::chrono_literals;
using Spans = std::vector<std::pair<TimeMs, TimeMs>>;

namespace {
double v(const cep::Event& e) {
  return e.values.at(0);
}
cep::Condition below(double x) {
  return [x](const cep::MatchView& m) { return v(m.current()) < x; };
}
cep::Condition at_least(double x) {
  return [x](const cep::MatchView& m) { return v(m.current()) >= x; };
}
}  // namespace

TEST_CASE("greedy B+ takes the longest run that still ends in C, reluctant B+? the shortest") {
  // Rows (times 1..6): 1 2 20 3 20 4. PATTERN (A B+ C), A: v < 10, C: v >= 20, B any row.
  // Greedy from t1: B would take t2..t6 but no C follows; backing off, B = t2..t4 and
  // C = t5 (20): one match t1..t5. Then t6 alone cannot start a match.
  // Reluctant: B = t2, C = t3 (20): t1..t3; from t4: A=3, B=t5, C=t6 (4) no, B can't grow
  // to a C: no match; t5 (20) is no A; t6: no rows for B.
  const auto rows = series("k", {1, 2, 20, 3, 20, 4});
  auto pattern = [](bool greedy) {
    auto b = cep::var("B").plus();
    return cep::Pattern{.root = cep::seq({cep::var("A"), greedy ? b : b.reluctant(), cep::var("C")}),
                        .define = {{"A", below(10)}, {"C", at_least(20)}}};
  };
  const auto greedy = run(pattern(true), {}, rows);
  CHECK(spans(greedy) == Spans{{1, 5}});
  REQUIRE(greedy.size() == 1);
  CHECK(greedy[0].rows[1].second == "B");
  CHECK(greedy[0].rows[4].second == "C");
  CHECK(spans(run(pattern(false), {}, rows)) == Spans{{1, 3}});
}

TEST_CASE("a greedy match waits until no longer run is possible; a reluctant one is final at once") {
  // Same rows with the watermark past all of them but the stream still open: the greedy
  // B+ (any row) could still grow into a later C, so nothing is final; reluctant t1..t3 is.
  const auto rows = series("k", {1, 2, 20, 3, 20, 4});
  for (bool greedy : {true, false}) {
    auto b = cep::var("B").plus();
    std::vector<Got> got;
    auto op = cep::Operator::create({.root = cep::seq({cep::var("A"), greedy ? b : b.reluctant(), cep::var("C")}),
                                     .define = {{"A", below(10)}, {"C", at_least(20)}}},
                                    {}, {.match = [&](const cep::Match& m) { got.push_back(got_of(m)); }});
    REQUIRE(op.has_value());
    for (const auto& e : rows) op->process(e);
    op->process(ceptest::ev("other", 100, 0));  // watermark 100: every row of k is released
    CHECK(got.size() == (greedy ? 0u : 1u));
    op->finish();
    CHECK(spans(got) == (greedy ? Spans{{1, 5}} : Spans{{1, 3}}));
  }
}

TEST_CASE("each AFTER MATCH SKIP strategy resumes where SQL says") {
  // Rows t1..t6: 1 2 3 15 4 16. PATTERN (A B+ C): A any, B v < 10 (greedy), C v >= 10.
  // From t1: A=1, B=2,3 (15 stops B), C=15: t1..t4 (vars A B B C).
  // PAST LAST ROW -> t5: A=4, B=16 no: fail; t6: no B: fail.          {t1..t4}
  // TO NEXT ROW -> t2: A=2,B=3,C=15 t2..t4; t3: A=3,B=15 no; t4: A=15,B=4,C=16 t4..t6;
  //                t5, t6 fail.                                          {t1..t4, t2..t4, t4..t6}
  // TO FIRST B -> t2 (first B of t1..t4): t2..t4; its first B t3: fail; t4..t6; first B
  //                t5: fail; t6 fail.                                    {t1..t4, t2..t4, t4..t6}
  // TO LAST B -> t3: fail; t4..t6; its last B t5: fail; t6 fail.        {t1..t4, t4..t6}
  // TO FIRST C -> t4: t4..t6; its C t6: fail.                            {t1..t4, t4..t6}
  const auto rows = series("k", {1, 2, 3, 15, 4, 16});
  auto with = [&](cep::Skip skip, std::string to = {}) {
    return spans(run({.root = cep::seq({cep::var("A"), cep::var("B").plus(), cep::var("C")}),
                      .define = {{"B", below(10)}, {"C", at_least(10)}},
                      .skip = skip,
                      .skip_to = std::move(to)},
                     {}, rows));
  };
  CHECK(with(cep::Skip::past_last_row) == Spans{{1, 4}});
  CHECK(with(cep::Skip::to_next_row) == Spans{{1, 4}, {2, 4}, {4, 6}});
  CHECK(with(cep::Skip::to_first, "B") == Spans{{1, 4}, {2, 4}, {4, 6}});
  CHECK(with(cep::Skip::to_last, "B") == Spans{{1, 4}, {4, 6}});
  CHECK(with(cep::Skip::to_first, "C") == Spans{{1, 4}, {4, 6}});
}

TEST_CASE("alternation prefers its first alternative that leads to a match; groups repeat") {
  // Rows 0 1 9. (A B | A) C with A, B: v < 5: the first alternative A B then C=9 matches
  // all three rows; written (A | A B) C, A then C=1 matches first (C is any row).
  const auto rows = series("k", {0, 1, 9});
  const std::map<std::string, cep::Condition> define{{"A", below(5)}, {"B", below(5)}};
  auto ab_first =
      run({.root = cep::seq({cep::alt({cep::seq({cep::var("A"), cep::var("B")}), cep::var("A")}), cep::var("C")}),
           .define = define},
          {}, rows);
  REQUIRE(ab_first.size() == 1);
  CHECK(ab_first[0].rows == std::vector<std::pair<TimeMs, std::string>>{{1, "A"}, {2, "B"}, {3, "C"}});
  auto a_first =
      run({.root = cep::seq({cep::alt({cep::var("A"), cep::seq({cep::var("A"), cep::var("B")})}), cep::var("C")}),
           .define = define},
          {}, rows);
  REQUIRE(!a_first.empty());
  CHECK(a_first[0].rows == std::vector<std::pair<TimeMs, std::string>>{{1, "A"}, {2, "C"}});

  // Rows 0 1 2 1 3: A (B | C)+ D with A: 0, B: 1, C: 2, D: 3 takes every row, each
  // classified by the alternative that holds for it.
  auto eq = [](double x) { return [x](const cep::MatchView& m) { return v(m.current()) == x; }; };
  auto group = run({.root = cep::seq({cep::var("A"), cep::alt({cep::var("B"), cep::var("C")}).plus(), cep::var("D")}),
                    .define = {{"A", eq(0)}, {"B", eq(1)}, {"C", eq(2)}, {"D", eq(3)}}},
                   {}, series("k", {0, 1, 2, 1, 3}));
  REQUIRE(group.size() == 1);
  CHECK(group[0].rows == std::vector<std::pair<TimeMs, std::string>>{{1, "A"}, {2, "B"}, {3, "C"}, {4, "B"}, {5, "D"}});
  // (A B){2}: exactly two A B pairs.
  auto twice = run({.root = cep::seq({cep::var("A"), cep::var("B")}).times(2), .define = {{"A", eq(0)}, {"B", eq(1)}}},
                   {}, series("k", {0, 1, 0, 1, 0, 1}));
  CHECK(spans(twice) == Spans{{1, 4}});
}

TEST_CASE("WITHIN discards a partial match once the watermark passes its first row plus the interval") {
  // PATTERN (A B) WITHIN 10 ms, A: v < 10, B: v >= 10. k: t0 A=1; the watermark (no
  // out-of-orderness) then moves on with events of another key. Before t10 the partial
  // match A waits; at watermark 16 >= 0 + 10 no B can come in time: discarded, counted.
  auto op = cep::Operator::create({.root = cep::seq({cep::var("A"), cep::var("B")}),
                                   .define = {{"A", below(10)}, {"B", at_least(10)}},
                                   .within = 10ms},
                                  {}, {});
  REQUIRE(op.has_value());
  op->process(ev("k", 0, 1));
  op->process(ev("x", 5, 50));  // releases k@0: waiting for a B
  CHECK(op->stats().expired == 0);
  CHECK(op->stats().retained == 1);
  op->process(ev("x", 9, 50));
  CHECK(op->stats().expired == 0);
  op->process(ev("x", 16, 50));  // k's own rows did not change: the deadline decides
  CHECK(op->stats().expired == 1);
  CHECK(op->stats().retained == 2);  // k and x each keep the one row PREV may reach

  // A B whose B comes 12 ms after A (past WITHIN) does not match; one 5 ms after does.
  cep::Stats stats;
  auto got = run({.root = cep::seq({cep::var("A"), cep::var("B")}),
                  .define = {{"A", below(10)}, {"B", at_least(10)}},
                  .within = 10ms},
                 {}, {ev("k", 0, 1), ev("k", 12, 20), ev("k", 20, 3), ev("k", 25, 30)}, &stats);
  CHECK(spans(got) == Spans{{20, 25}});
  CHECK(stats.expired == 1);
}

TEST_CASE("each key is matched on its own rows, with its own match numbers") {
  // The skip test's rows for key x (times 1..6) and, interleaved, for key y shifted by 100:
  // each key gets the matches it would get alone, numbered from 1.
  auto x = series("x", {1, 2, 3, 15, 4, 16});
  auto y = series("y", {1, 2, 3, 15, 4, 16, 2, 30}, 101);
  std::vector<cep::Event> mixed;
  for (std::size_t i = 0; i < std::max(x.size(), y.size()); ++i) {
    if (i < x.size()) mixed.push_back(x[i]);
    if (i < y.size()) mixed.push_back(y[i]);
  }
  for (auto& e : mixed) e.source = e.key == "x" ? 1 : 2;  // one watermark source per key
  auto got = run({.root = cep::seq({cep::var("A"), cep::var("B").plus(), cep::var("C")}),
                  .define = {{"B", below(10)}, {"C", at_least(10)}}},
                 {}, mixed);
  // y: t101..t104 as for x; then from t105 (4): A=4, B=16 no; t106: A=16, B=2, C=30.
  std::sort(got.begin(), got.end());
  REQUIRE(got.size() == 3);
  CHECK(got[0].key == "x");
  CHECK(got[0].number == 1);
  CHECK(spans({got[0]}) == Spans{{1, 4}});
  CHECK(got[1].key == "y");
  CHECK(got[1].number == 1);
  CHECK(got[2].number == 2);
  CHECK(spans({got[1], got[2]}) == Spans{{101, 104}, {106, 108}});
}

TEST_CASE("events out of order before the watermark are matched in event-time order; late ones follow the policy") {
  // The skip test's rows arrive as t4 t1 t3 t2 t6 t5 with 5 ms of allowed out-of-orderness:
  // the match is the one of the ordered rows (t1..t4 past last row).
  auto rows = series("k", {1, 2, 3, 15, 4, 16});
  const std::vector<cep::Event> shuffled{rows[3], rows[0], rows[2], rows[1], rows[5], rows[4]};
  const cep::Pattern pattern{.root = cep::seq({cep::var("A"), cep::var("B").plus(), cep::var("C")}),
                             .define = {{"B", below(10)}, {"C", at_least(10)}}};
  cep::Stats stats;
  auto got = run(pattern, {.watermark = {.out_of_orderness = 5ms}}, shuffled, &stats);
  REQUIRE(got.size() == 1);
  CHECK(got[0].rows == std::vector<std::pair<TimeMs, std::string>>{{1, "A"}, {2, "B"}, {3, "B"}, {4, "C"}});
  CHECK(stats.late_dropped == 0);

  // Without out-of-orderness t1 arrives after t4 moved the watermark to 4: late, dropped
  // and counted (or handed to the side output). Without t1, t2 starts the match.
  auto dropped = run(pattern, {}, {rows[3], rows[0], rows[1], rows[2], rows[4], rows[5]}, &stats);
  CHECK(stats.late_dropped == 3);          // t1, t2, t3 are all behind t4
  CHECK(spans(dropped) == Spans{{4, 6}});  // t4 15, t5 4, t6 16: A=15, B=4, C=16
  std::vector<TimeMs> side;
  auto op = cep::Operator::create(pattern, {.late = rill::stream::LatePolicy::side_output},
                                  {.late = [&](const cep::Event& e) { side.push_back(e.time); }});
  REQUIRE(op.has_value());
  for (const auto& e : {rows[3], rows[0]}) op->process(e);
  CHECK(side == std::vector<TimeMs>{1});
  CHECK(op->stats().late_side == 1);
}

TEST_CASE("measures see the whole match for ONE ROW PER MATCH and the rows so far for ALL ROWS") {
  // A V shape: 10 9 8 9 11 on times 1..5: PATTERN (S D+ U+), S any, D: below the previous
  // row, U: above the previous row. Match: S=10, D=9,8, U=9,11. Measures: the start price,
  // the bottom (LAST(D)), the end (LAST(U)), MATCH_NUMBER.
  auto down = [](const cep::MatchView& m) { return m.prev() && v(m.current()) < v(*m.prev()); };
  auto up = [](const cep::MatchView& m) { return m.prev() && v(m.current()) > v(*m.prev()); };
  const cep::Pattern pattern{.root = cep::seq({cep::var("S"), cep::var("D").plus(), cep::var("U").plus()}),
                             .define = {{"D", down}, {"U", up}}};
  auto value_of = [](const cep::Event* e) { return e ? cep::Value{v(*e)} : cep::Value{}; };
  std::vector<std::pair<std::string, cep::Measure>> measures{
      {"start", [&](const cep::MatchView& m) { return value_of(m.first("S")); }},
      {"bottom", [&](const cep::MatchView& m) { return value_of(m.last("D")); }},
      {"end", [&](const cep::MatchView& m) { return value_of(m.last("U")); }},
      {"downs", [](const cep::MatchView& m) { return cep::Value{static_cast<std::int64_t>(m.count("D"))}; }}};
  std::vector<cep::MatchRow> rows;
  std::vector<std::string> classifiers;
  std::vector<TimeMs> times;
  std::vector<cep::Match> matches;
  auto collect = cep::Output{.match = [&](const cep::Match& m) { matches.push_back(m); },
                             .row =
                                 [&](const cep::MatchRow& r) {
                                   rows.push_back(r);
                                   classifiers.emplace_back(r.classifier);  // views: valid during the call only
                                   times.push_back(r.event ? r.event->time : -1);
                                 }};
  cep::Options options;  // assigned, not designated: GCC 12 warns falsely on the std::function inside
  options.measures = measures;
  auto one = cep::Operator::create(pattern, options, collect);
  REQUIRE(one.has_value());
  for (const auto& e : series("k", {10, 9, 8, 9, 11})) one->process(e);
  one->finish();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].match_number == 1);
  CHECK(rows[0].measures == std::vector<cep::Value>{10.0, 8.0, 11.0, std::int64_t{2}});
  REQUIRE(matches.size() == 1);
  CHECK(matches[0].events.size() == 5);  // the complex event carries every event
  CHECK(matches[0].events[2].sequence == 3);

  rows.clear();
  classifiers.clear();
  times.clear();
  options.rows_per_match = cep::RowsPerMatch::all;
  auto all = cep::Operator::create(pattern, options, collect);
  REQUIRE(all.has_value());
  for (const auto& e : series("k", {10, 9, 8, 9, 11})) all->process(e);
  all->finish();
  // Running: at the second row no U yet (end NULL), bottom 9; at the fourth, bottom 8, end 9.
  REQUIRE(rows.size() == 5);
  CHECK(classifiers == std::vector<std::string>{"S", "D", "D", "U", "U"});
  CHECK(rows[1].measures == std::vector<cep::Value>{10.0, 9.0, cep::Value{}, std::int64_t{1}});
  CHECK(rows[3].measures == std::vector<cep::Value>{10.0, 8.0, 9.0, std::int64_t{2}});
  CHECK(times == std::vector<TimeMs>{1, 2, 3, 4, 5});
}

TEST_CASE("bad patterns and options are refused with invalid_argument") {
  auto refused = [](cep::Pattern p, cep::Options o = {}) {
    auto op = cep::Operator::create(std::move(p), std::move(o), {});
    return !op && op.error().code == rill::Errc::invalid_argument;
  };
  CHECK(refused({.root = cep::var("")}));
  CHECK(refused({.root = cep::var("A").between(3, 2)}));
  CHECK(refused({.root = cep::seq({})}));
  CHECK(refused({.root = cep::var("A"), .define = {{"B", below(1)}}}));
  CHECK(refused({.root = cep::var("A"), .skip = cep::Skip::to_last, .skip_to = "B"}));
  CHECK(refused({.root = cep::var("A"), .within = 0ms}));
  CHECK(refused({.root = cep::var("A")}, {.max_rows_per_key = 0}));
  CHECK(cep::to_string(cep::seq({cep::var("A"), cep::var("B").plus().reluctant(), cep::var("C").between(2, 4)})) ==
        "(A B+? C{2,4})");
}

TEST_CASE("a partial match that grows past max_rows_per_key is given up and counted") {
  // A B* C with B any and no C ever: the attempt at t1 holds every row; at 50 rows it is
  // abandoned, as is each later attempt that reaches the bound.
  cep::Stats stats;
  std::vector<double> values(200, 1.0);
  auto got =
      run({.root = cep::seq({cep::var("A"), cep::var("B").star(), cep::var("C")}), .define = {{"C", at_least(10)}}},
          {.max_rows_per_key = 50}, series("k", values), &stats);
  CHECK(got.empty());
  CHECK(stats.overflow > 0);
  CHECK(stats.retained <= 51);
}

TEST_CASE("a quantified group repeated past 1000 iterations gives its attempt up instead of the stack") {
  // (A B)+ C over 0 1 0 1 ... : every iteration of the group nests a level of the search.
  // 1500 pairs then a 3: an attempt would need 1500 iterations, past the bound, so it is
  // given up (counted) at each start; 10 pairs then a 3 match normally.
  auto eq = [](double x) { return [x](const cep::MatchView& m) { return v(m.current()) == x; }; };
  const cep::Pattern pattern{.root = cep::seq({cep::seq({cep::var("A"), cep::var("B")}).plus(), cep::var("C")}),
                             .define = {{"A", eq(0)}, {"B", eq(1)}, {"C", eq(3)}}};
  auto pairs = [](int n) {
    std::vector<double> values;
    for (int i = 0; i < n; ++i) values.insert(values.end(), {0, 1});
    values.push_back(3);
    return values;
  };
  cep::Stats stats;
  CHECK(run(pattern, {}, series("k", pairs(1500)), &stats).empty() == false);  // late starts fit the bound
  CHECK(stats.overflow > 0);
  auto ten = run(pattern, {}, series("k", pairs(10)), &stats);
  CHECK(spans(ten) == Spans{{1, 21}});
  CHECK(stats.overflow == 0);
}

TEST_CASE("fraud: three failed logins in a row, then a large payment within 5 minutes, per account") {
  // values = {kind, amount}: kind 0 a failed login, 1 a good login, 2 a payment.
  // PATTERN (F{3} X*? P) WITHIN 5 min, F: kind 0, P: a payment >= 1000, X: anything between.
  // a: F F F (0, 60, 120 s), a small payment at 150 s (X), 5000 at 200 s: a match of all five.
  // b: F F F then 5000 at 400 s: 400 s after the first F, past WITHIN: no match (expired).
  // c: F F, a good login, F, 2000: no three failed logins in a row: no match.
  auto e = [](std::string key, TimeMs s, double kind, double amount = 0) {
    return cep::Event{
        .key = std::move(key), .time = s * 1000, .source = 1, .sequence = 0, .values = {kind, amount}, .payload = {}};
  };
  auto kind = [](double k) { return [k](const cep::MatchView& m) { return cep::field(&m.current(), 0) == k; }; };
  cep::Stats stats;
  auto got = run({.root = cep::seq({cep::var("F").times(3), cep::var("X").star().reluctant(), cep::var("P")}),
                  .define = {{"F", kind(0)},
                             {"P",
                              [](const cep::MatchView& m) {
                                return cep::field(&m.current(), 0) == 2 && cep::field(&m.current(), 1) >= 1000;
                              }}},
                  .within = 5min},
                 {.watermark = {.out_of_orderness = 10min}},  // accounts interleave out of time order
                 {e("a", 0, 0), e("b", 0, 0), e("c", 0, 0), e("a", 60, 0), e("b", 10, 0), e("c", 10, 0), e("a", 120, 0),
                  e("b", 20, 0), e("c", 20, 1), e("a", 150, 2, 50), e("c", 30, 0), e("c", 40, 2, 2000),
                  e("a", 200, 2, 5000), e("b", 400, 2, 5000)},
                 &stats);
  REQUIRE(got.size() == 1);
  CHECK(got[0].key == "a");
  CHECK(got[0].rows == std::vector<std::pair<TimeMs, std::string>>{
                           {0, "F"}, {60000, "F"}, {120000, "F"}, {150000, "X"}, {200000, "P"}});
  CHECK(stats.expired >= 1);  // b's attempt from its first F
  CHECK(stats.late_dropped == 0);
}
