// WindowOperator against a brute-force reference for every window kind, with random
// out-of-order input from several sources; session merges; late events and corrections.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>

#include "stream_reference.hpp"
#include "test_seed.hpp"

namespace rs = rill::stream;
using namespace std::chrono_literals;
using streamtest::Changelog;
using streamtest::RowTuple;
using streamtest::TimeMs;

namespace {

struct Run {
  Changelog changes;
  std::vector<TimeMs> markers;
  std::uint64_t rows_after_their_marker = 0;  // a row whose window end <= an earlier marker
  rs::OperatorStats stats;
};

Run run(const std::vector<rs::Event>& input, rs::OperatorOptions options) {
  Run r;
  auto op = rs::WindowOperator::create(
      std::move(options),
      {.row =
           [&](const rs::Row& row) {
             // No lateness: no new content may come for a window the marker called complete
             // (retractions of an earlier row may: every_change count windows grow).
             const bool retraction = row.kind == rs::RowKind::update_before || row.kind == rs::RowKind::remove;
             if (!retraction && !r.markers.empty() && row.end <= r.markers.back()) ++r.rows_after_their_marker;
             r.changes.apply(row);
           },
       .watermark = [&](TimeMs w) { r.markers.push_back(w); }});
  REQUIRE(op);
  for (const auto& e : input) op->process(e);
  op->finish();
  r.stats = op->stats();
  return r;
}

double fold_range(const std::vector<double>& v) {
  return *std::max_element(v.begin(), v.end()) - *std::min_element(v.begin(), v.end());
}

}  // namespace

TEST_CASE("every window kind, both emission modes, matches a brute-force reference on random out-of-order input") {
  const std::uint64_t seed = rilltest::test_seed();
  std::mt19937_64 rng(seed);
  const std::vector<std::pair<const char*, rs::WindowSpec>> kinds = {
      {"tumbling", rs::tumbling(100ms)},   {"hopping", rs::hopping(100ms, 30ms)},
      {"sliding", rs::sliding(50ms)},      {"session", rs::session(20ms)},
      {"count", rs::count_window(7)},      {"global", rs::global_window()},
      {"cumulate", rs::cumulate(20ms, 100ms)},
  };
  for (int round = 0; round < 10; ++round) {
    const auto input = streamtest::random_input(rng, 3, 400, 5, 4000, 40);
    for (const auto& [kind_name, spec] : kinds) {
      const std::string name = kind_name;
      for (auto mode : {rs::Emit::final_only, rs::Emit::every_change}) {
        CAPTURE(seed);
        CAPTURE(round);
        CAPTURE(name);
        CAPTURE(static_cast<int>(mode));
        const auto r = run(input, {.window = spec,
                                   .aggregate = rs::sum(),
                                   .watermark = {.out_of_orderness = 40ms, .min_sources = 3},
                                   .emit = mode});
        const auto expected =
            streamtest::reference(input, spec, streamtest::fold_sum, mode == rs::Emit::every_change);
        CHECK(r.stats.events == input.size());
        CHECK(r.stats.late_dropped == 0);  // the disorder stays within the bound
        CHECK(r.changes.missing_retractions == 0);
        CHECK(r.changes.rows.size() == expected.size());
        CHECK(r.changes.rows == expected);
        CHECK(r.rows_after_their_marker == 0);
        CHECK(!r.markers.empty());
        CHECK(std::is_sorted(r.markers.begin(), r.markers.end()));
        if (spec.kind != rs::WindowKind::global && spec.kind != rs::WindowKind::count) {
          CHECK(r.stats.open_windows == 0);  // the end of input closed and freed every window
        }
        if (mode == rs::Emit::final_only && spec.kind != rs::WindowKind::global) {
          CHECK(r.stats.corrections == 0);  // final rows only: each window emitted once
          CHECK(r.stats.rows == expected.size());
        }
      }
    }
  }
}

TEST_CASE("count, min, max, avg and a user-defined aggregate match their reference folds") {
  std::mt19937_64 rng(rilltest::test_seed() + 1);
  const auto input = streamtest::random_input(rng, 2, 300, 4, 2000, 25);
  const auto avg = [](const std::vector<double>& v) { return streamtest::fold_sum(v) / static_cast<double>(v.size()); };
  struct Case {
    const char* name;
    rs::Aggregate agg;
    streamtest::Fold fold;
  };
  std::vector<Case> cases;
  cases.push_back({"count", rs::count(), [](const std::vector<double>& v) { return static_cast<double>(v.size()); }});
  cases.push_back({"min", rs::min(), [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }});
  cases.push_back({"max", rs::max(), [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }});
  cases.push_back({"avg", rs::avg(), avg});
  // User-defined: the range (max - min) over a state of two numbers.
  struct MinMax {
    double lo = 1e300, hi = -1e300;
  };
  cases.push_back({"range",
                   rs::make_aggregate([] { return MinMax{}; },
                                      [](MinMax& s, double v) {
                                        s.lo = std::min(s.lo, v);
                                        s.hi = std::max(s.hi, v);
                                      },
                                      [](MinMax& s, const MinMax& o) {
                                        s.lo = std::min(s.lo, o.lo);
                                        s.hi = std::max(s.hi, o.hi);
                                      },
                                      [](const MinMax& s) { return s.hi - s.lo; }),
                   fold_range});
  for (auto& c : cases) {
    for (const auto& spec : {rs::tumbling(100ms), rs::session(15ms)}) {  // session: merge() is used
      CAPTURE(c.name);
      const auto r = run(input, {.window = spec, .aggregate = c.agg, .watermark = {.out_of_orderness = 25ms, .min_sources = 2}});
      CHECK(r.changes.rows == streamtest::reference(input, spec, c.fold));
    }
  }
}

TEST_CASE("a late event that bridges two closed sessions merges them: -U first, -D second, +U merged") {
  Changelog out;
  auto op = rs::WindowOperator::create({.window = rs::session(10ms), .allowed_lateness = 100ms},
                                       {.row = [&](const rs::Row& r) { out.apply(r); }});
  REQUIRE(op);
  auto ev = [](TimeMs t, double v) { return rs::Event{.key = "a", .value = v, .time = t, .source = 1}; };
  op->process(ev(0, 1));   // session [0, 10)
  op->process(ev(18, 2));  // W = 18: [0, 10) closes; new session [18, 28)
  op->process(ev(40, 4));  // W = 40: [18, 28) closes; new session [40, 50)
  REQUIRE(out.log.size() == 2);
  CHECK(streamtest::tuple_of(out.log[0]) == RowTuple{"a", 0, 10, 1, 1});
  CHECK(streamtest::tuple_of(out.log[1]) == RowTuple{"a", 18, 28, 2, 1});
  op->process(ev(9, 8));  // late (W = 40) but within lateness: [9, 19) bridges both
  REQUIRE(out.log.size() == 5);
  CHECK(out.log[2].kind == rs::RowKind::update_before);
  CHECK(streamtest::tuple_of(out.log[2]) == RowTuple{"a", 0, 10, 1, 1});
  CHECK(out.log[3].kind == rs::RowKind::remove);
  CHECK(streamtest::tuple_of(out.log[3]) == RowTuple{"a", 18, 28, 2, 1});
  CHECK(out.log[4].kind == rs::RowKind::update_after);
  CHECK(streamtest::tuple_of(out.log[4]) == RowTuple{"a", 0, 28, 11, 3});
  CHECK(op->stats().late_accepted == 1);
  CHECK(op->stats().corrections == 2);
  op->finish();
  CHECK(out.missing_retractions == 0);
  CHECK(out.rows == std::multiset<RowTuple>{{"a", 0, 28, 11, 3}, {"a", 40, 50, 4, 1}});
}

TEST_CASE("a late merge that reopens a session retracts now and emits the merged row when it closes") {
  Changelog out;
  auto op = rs::WindowOperator::create({.window = rs::session(10ms), .allowed_lateness = 100ms},
                                       {.row = [&](const rs::Row& r) { out.apply(r); }});
  REQUIRE(op);
  op->process({.key = "a", .value = 1, .time = 0, .source = 1});
  op->process({.key = "a", .value = 1, .time = 12, .source = 1});  // W = 12: [0, 10) closes
  REQUIRE(out.log.size() == 1);
  op->process({.key = "a", .value = 5, .time = 8, .source = 1});  // merges [0,10) and [12,22) -> [0,22), open
  REQUIRE(out.log.size() == 2);
  CHECK(out.log[1].kind == rs::RowKind::update_before);
  op->process({.key = "a", .value = 0, .time = 30, .source = 1});  // W = 30 > 22
  REQUIRE(out.log.size() == 3);
  CHECK(out.log[2].kind == rs::RowKind::update_after);
  CHECK(streamtest::tuple_of(out.log[2]) == RowTuple{"a", 0, 22, 7, 3});
}

TEST_CASE("late events: corrected within the allowed lateness, dropped and counted or side output past it") {
  for (auto policy : {rs::LatePolicy::drop, rs::LatePolicy::side_output}) {
    Changelog out;
    std::vector<rs::Event> side;
    std::vector<TimeMs> markers;
    auto op = rs::WindowOperator::create(
        {.window = rs::tumbling(10ms), .allowed_lateness = 20ms, .late = policy},
        {.row = [&](const rs::Row& r) { out.apply(r); },
         .watermark = [&](TimeMs w) { markers.push_back(w); },
         .late = [&](const rs::Event& e) { side.push_back(e); }});
    REQUIRE(op);
    auto ev = [](TimeMs t, double v) { return rs::Event{.key = "k", .value = v, .time = t, .source = 7}; };
    op->process(ev(1, 1));
    op->process(ev(5, 2));
    op->process(ev(12, 4));  // W = 12: [0, 10) final
    REQUIRE(out.log.size() == 1);
    CHECK(out.log[0].kind == rs::RowKind::insert);
    CHECK(streamtest::tuple_of(out.log[0]) == RowTuple{"k", 0, 10, 3, 2});
    CHECK(markers == std::vector<TimeMs>{12});
    op->process(ev(7, 7));  // late, 7 >= W - 20: a correction
    REQUIRE(out.log.size() == 3);
    CHECK(out.log[1].kind == rs::RowKind::update_before);
    CHECK(streamtest::tuple_of(out.log[1]) == RowTuple{"k", 0, 10, 3, 2});
    CHECK(out.log[2].kind == rs::RowKind::update_after);
    CHECK(streamtest::tuple_of(out.log[2]) == RowTuple{"k", 0, 10, 10, 3});
    CHECK(op->stats().late_accepted == 1);
    const auto open_before = op->stats().open_windows;
    op->process(ev(40, 1));  // W = 40: [10, 20) final; [0, 10) freed (10 + 20 <= 40)
    CHECK(op->stats().open_windows < open_before);
    op->process(ev(8, 100));  // 8 < W - 20 = 20: past the allowed lateness
    CHECK(op->stats().late_accepted == 1);
    if (policy == rs::LatePolicy::drop) {
      CHECK(op->stats().late_dropped == 1);
      CHECK(side.empty());
    } else {
      CHECK(op->stats().late_side == 1);
      REQUIRE(side.size() == 1);
      CHECK(side[0].time == 8);
      CHECK(side[0].value == 100);
    }
    op->finish();
    CHECK(out.missing_retractions == 0);
    CHECK(out.rows == std::multiset<RowTuple>{{"k", 0, 10, 10, 3}, {"k", 10, 20, 4, 1}, {"k", 40, 50, 1, 1}});
  }
}

TEST_CASE("late corrections for hopping and sliding windows keep the changelog equal to the reference") {
  std::mt19937_64 rng(rilltest::test_seed() + 2);
  // Disorder 60 ms against a bound of 20 ms: many events are late, all within 100 ms lateness.
  const auto input = streamtest::random_input(rng, 2, 200, 3, 2000, 60);
  for (const auto& spec : {rs::hopping(50ms, 20ms), rs::sliding(30ms), rs::session(25ms), rs::tumbling(40ms),
                           rs::cumulate(10ms, 50ms)}) {
    CAPTURE(static_cast<int>(spec.kind));
    const auto r = run(input, {.window = spec, .watermark = {.out_of_orderness = 20ms, .min_sources = 2}, .allowed_lateness = 100ms});
    CHECK(r.stats.late_accepted > 0);
    CHECK(r.stats.late_dropped == 0);
    CHECK(r.stats.corrections > 0);
    CHECK(r.changes.missing_retractions == 0);
    CHECK(r.changes.rows == streamtest::reference(input, spec, streamtest::fold_sum));
  }
}

TEST_CASE("options that cannot work are refused with invalid_argument") {
  for (const auto& spec : {rs::tumbling(0ms), rs::hopping(10ms, 20ms), rs::sliding(-1ms), rs::session(0ms),
                           rs::count_window(0)}) {
    auto op = rs::WindowOperator::create({.window = spec}, {});
    REQUIRE_FALSE(op);
    CHECK(op.error().code == rill::Errc::invalid_argument);
  }
  auto op = rs::WindowOperator::create({.window = rs::tumbling(1s), .allowed_lateness = -1ms}, {});
  CHECK_FALSE(op);
}
