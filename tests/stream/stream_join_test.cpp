// Joins against nested-loop references: window, interval, regular inner and left outer joins
// over random out-of-order input with late records on both sides give exactly the reference's
// rows; late records are counted or side-output; TTL frees state and stops matches; the join's
// watermark is the minimum of its inputs'.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>

#include "join_reference.hpp"
#include "test_seed.hpp"

namespace rs = rill::stream;
using namespace std::chrono_literals;
using jointest::Arrival;
using jointest::Side;
using jointest::TimeMs;

namespace {

constexpr TimeMs bound = 30;  // out_of_orderness of every test here

rs::WatermarkOptions watermark_options() {
  return {.out_of_orderness = std::chrono::milliseconds(bound), .clock = [] { return std::int64_t{0}; }};
}

// Which arrivals the join must find late, from the replayed watermark.
std::vector<bool> late_of(const std::vector<Arrival>& input, const std::vector<TimeMs>& w, TimeMs ttl, bool regular) {
  std::vector<bool> late(input.size());
  for (std::size_t i = 0; i < input.size(); ++i) {
    const TimeMs t = input[i].event.time;
    late[i] = regular ? (ttl > 0 && t + ttl < w[i]) : t < w[i];
  }
  return late;
}

struct Run {
  jointest::Changelog changelog;
  rs::JoinStats stats;
  std::uint64_t side_outputs = 0;
  std::uint64_t rows_behind_watermark = 0;  // rows emitted with time < the join's watermark then
};

Run run(const std::vector<Arrival>& input, rs::JoinOptions options) {
  Run out;
  std::optional<rs::JoinOperator> op;
  auto made = rs::JoinOperator::create(
      std::move(options),
      {.row =
           [&](const rs::JoinRow& r) {
             // A window row comes once the watermark passed its window; the others are never
             // behind the watermark of the moment they are emitted.
             const TimeMs w = op ? op->watermark() : rs::min_time;
             if (r.window_end != 0 ? w < r.window_end : (r.kind == rs::RowKind::insert && r.time < w)) {
               ++out.rows_behind_watermark;
             }
             out.changelog.apply(r);
           },
       .late = [&](Side, const rs::JoinEvent&) { ++out.side_outputs; }});
  REQUIRE(made);
  op.emplace(std::move(*made));
  for (const auto& a : input) op->process(a.side, a.event);
  op->finish();
  out.stats = op->stats();
  return out;
}

std::size_t count(const std::vector<bool>& v) {
  return static_cast<std::size_t>(std::count(v.begin(), v.end(), true));
}

}  // namespace

TEST_CASE("window join: the pairs of each tumbling and hopping window equal a nested loop's; late records dropped") {
  std::mt19937_64 rng(rilltest::test_seed());
  for (int round = 0; round < 12; ++round) {
    const bool hopping = round % 2 == 1;
    const TimeMs size = 100, hop = hopping ? 40 : 100;
    const auto input = jointest::random_input(rng, 2, 120, 4, 1500, bound, 0.1);
    const auto w = jointest::watermarks_before(input, bound);
    const auto late = late_of(input, w, 0, false);
    const rs::WindowSpec spec = hopping ? rs::hopping(100ms, 40ms) : rs::tumbling(100ms);
    const Run r = run(input, {.kind = rs::JoinKind::window, .window = spec, .watermark = watermark_options()});
    CHECK(r.changelog.rows == jointest::window_reference(input, late, size, hop));
    CHECK(r.stats.late_dropped == count(late));
    CHECK(r.rows_behind_watermark == 0);
    CHECK(r.stats.state_records == 0);  // finish() fired every window
    CHECK(r.stats.markers > 0);
    CHECK(r.stats.left_events + r.stats.right_events == input.size());
  }
}

TEST_CASE("interval join: every pair with r - lower <= l <= r + upper, emitted as it completes; state bounded") {
  std::mt19937_64 rng(rilltest::test_seed() + 1);
  const std::pair<TimeMs, TimeMs> bounds[] = {{20, 50}, {0, 0}, {-10, 40}, {60, -5}};
  for (int round = 0; round < 12; ++round) {
    const auto [lower, upper] = bounds[round % 4];
    const auto input = jointest::random_input(rng, 2, 120, 4, 1500, bound, 0.1);
    const auto w = jointest::watermarks_before(input, bound);
    const auto late = late_of(input, w, 0, false);
    std::size_t peak = 0;
    std::optional<rs::JoinOperator> op;
    jointest::Changelog log;
    auto made = rs::JoinOperator::create({.kind = rs::JoinKind::interval,
                                          .lower = std::chrono::milliseconds(lower),
                                          .upper = std::chrono::milliseconds(upper),
                                          .watermark = watermark_options()},
                                         {.row = [&](const rs::JoinRow& row) { log.apply(row); }});
    REQUIRE(made);
    op.emplace(std::move(*made));
    for (const auto& a : input) {
      op->process(a.side, a.event);
      peak = std::max(peak, op->stats().state_records);
    }
    op->finish();
    CHECK(log.rows == jointest::interval_reference(input, late, lower, upper));
    CHECK(op->stats().late_dropped == count(late));
    CHECK(op->stats().state_records == 0);
    // The watermark frees records: never the whole input held at once (4 x 120 records
    // over 1.5 s, each kept only for its interval plus the out-of-orderness).
    CHECK(peak < input.size() / 2);
    CHECK(op->stats().expired == input.size() - count(late));
  }
}

TEST_CASE(
    "regular inner and left outer joins with and without TTL equal a nested loop; left outer retracts its null rows") {
  std::mt19937_64 rng(rilltest::test_seed() + 2);
  for (int round = 0; round < 16; ++round) {
    const bool outer = round % 2 == 1;
    const TimeMs ttl = (round / 2) % 2 == 0 ? 0 : 150;
    const auto input = jointest::random_input(rng, 2, 100, 12, 1500, bound, 0.1);
    const auto w = jointest::watermarks_before(input, bound);
    const auto late = late_of(input, w, ttl, true);
    const Run r = run(input, {.kind = outer ? rs::JoinKind::regular_left_outer : rs::JoinKind::regular_inner,
                              .ttl = std::chrono::milliseconds(ttl),
                              .watermark = watermark_options()});
    CAPTURE(outer);
    CAPTURE(ttl);
    CHECK(r.changelog.rows == jointest::regular_reference(input, late, w, ttl, outer));
    CHECK(r.changelog.missing_retractions == 0);
    CHECK(r.stats.late_dropped == count(late));
    if (ttl == 0) {
      CHECK(count(late) == 0);
      CHECK(r.stats.state_records == input.size());  // nothing expires without a ttl
    } else {
      CHECK(r.stats.state_records == 0);  // finish(): the watermark at the end frees all
    }
    CHECK(r.stats.retractions == (outer ? jointest::expected_retractions(input, late, w, ttl) : 0));
  }
}

TEST_CASE("a record whose TTL ran out is forgotten: a later match sees nothing, and expiry emits nothing") {
  const auto e = [](std::string key, std::string payload, TimeMs t, std::uint64_t src) {
    return rs::JoinEvent{.key = std::move(key), .payload = std::move(payload), .time = t, .source = src, .sequence = 1};
  };
  for (const TimeMs ttl : {0, 100}) {
    std::vector<jointest::RowTuple> rows;  // copies: a JoinRow is valid only during the call
    std::vector<rs::RowKind> kinds;
    auto op = rs::JoinOperator::create({.kind = rs::JoinKind::regular_left_outer,
                                        .ttl = std::chrono::milliseconds(ttl),
                                        .watermark = {.clock = [] { return std::int64_t{0}; }}},
                                       {.row = [&](const rs::JoinRow& r) {
                                         rows.push_back(jointest::tuple_of(r));
                                         kinds.push_back(r.kind);
                                       }});
    REQUIRE(op);
    op->process(Side::left, e("a", "1", 0, 1));     // +I (a, null)
    op->process(Side::left, e("b", "2", 300, 1));   // +I (b, null); left W = 300
    op->process(Side::right, e("z", "3", 300, 2));  // W = 300: a (0 + 100 < 300) expires with ttl
    CHECK(rows.size() == 2);
    op->process(Side::right, e("a", "4", 250, 2));  // matches a only if a is still held
    if (ttl == 0) {
      REQUIRE(rows.size() == 4);
      CHECK(kinds[2] == rs::RowKind::remove);
      CHECK(rows[2] == jointest::RowTuple{"a", "1", "null", 0, 0, 0});  // the null-padded row
      CHECK(kinds[3] == rs::RowKind::insert);
      CHECK(rows[3] == jointest::RowTuple{"a", "1", "4", 250, 0, 0});
      CHECK(op->stats().expired == 0);
    } else {
      CHECK(rows.size() == 2);
      CHECK(op->stats().expired == 1);
      CHECK(op->stats().state_records == 3);
    }
    CHECK(op->stats().late_dropped == 0);
  }
}

TEST_CASE("late records of either input go to the side output with their input, when asked") {
  std::vector<std::pair<Side, std::string>> side;
  auto op =
      rs::JoinOperator::create({.kind = rs::JoinKind::interval,
                                .lower = 10ms,
                                .upper = 10ms,
                                .watermark = {.clock = [] { return std::int64_t{0}; }},
                                .late = rs::LatePolicy::side_output},
                               {.late = [&](Side s, const rs::JoinEvent& e) { side.emplace_back(s, e.payload); }});
  REQUIRE(op);
  op->process(Side::left, {.key = "k", .payload = "a", .time = 100, .source = 1});
  op->process(Side::right, {.key = "k", .payload = "b", .time = 200, .source = 2});
  CHECK(op->watermark() == 100);  // min(left 100, right 200)
  op->process(Side::right, {.key = "k", .payload = "c", .time = 99, .source = 2});
  op->process(Side::left, {.key = "k", .payload = "d", .time = 50, .source = 1});
  op->process(Side::left, {.key = "k", .payload = "e", .time = 100, .source = 1});  // not late: t == W
  REQUIRE(side.size() == 2);
  CHECK(side[0] == std::pair{Side::right, std::string("c")});
  CHECK(side[1] == std::pair{Side::left, std::string("d")});
  CHECK(op->stats().late_side == 2);
  CHECK(op->stats().late_dropped == 0);
}

TEST_CASE("the join's watermark is the minimum of its inputs'; an idle input stops holding it back") {
  std::int64_t now = 0;
  std::vector<TimeMs> markers;
  auto op = rs::JoinOperator::create({.kind = rs::JoinKind::window,
                                      .window = rs::tumbling(100ms),
                                      .watermark = {.idle_after = 1000ms, .clock = [&] { return now; }}},
                                     {.watermark = [&](TimeMs w) { markers.push_back(w); }});
  REQUIRE(op);
  op->process(Side::left, {.key = "k", .payload = "1", .time = 500, .source = 1});
  CHECK(op->watermark() == rs::min_time);  // the right input has said nothing yet
  op->process(Side::right, {.key = "k", .payload = "2", .time = 250, .source = 2});
  CHECK(op->watermark() == 250);
  op->process(Side::left, {.key = "k", .payload = "3", .time = 900, .source = 1});
  CHECK(op->watermark() == 250);  // held by the right input
  now = 1500;                     // the right input has gone idle ...
  op->process(Side::left, {.key = "k", .payload = "4", .time = 950, .source = 1});
  CHECK(op->watermark() == 950);  // ... so the left one alone moves it
  CHECK(!markers.empty());
  CHECK(markers.back() == 950);
  CHECK(op->stats().bad_time == 0);
  op->process(Side::left, {.key = "k", .payload = "5", .time = rs::max_time, .source = 1});
  CHECK(op->stats().bad_time == 1);  // a time the join cannot do arithmetic on: counted, dropped
  CHECK(op->watermark() == 950);
}

TEST_CASE("invalid join options are refused") {
  CHECK(rs::JoinOperator::create({.kind = rs::JoinKind::window, .window = rs::session(10ms)}, {}).error().code ==
        rill::Errc::invalid_argument);
  CHECK(rs::JoinOperator::create({.kind = rs::JoinKind::window, .window = rs::hopping(10ms, 20ms)}, {}).error().code ==
        rill::Errc::invalid_argument);
  CHECK(rs::JoinOperator::create({.kind = rs::JoinKind::interval, .lower = -10ms, .upper = 5ms}, {}).error().code ==
        rill::Errc::invalid_argument);
  CHECK(rs::JoinOperator::create({.kind = rs::JoinKind::regular_inner, .ttl = -1ms}, {}).error().code ==
        rill::Errc::invalid_argument);
  CHECK(rs::JoinOperator::create({.kind = rs::JoinKind::interval, .lower = -10ms, .upper = 10ms}, {}).has_value());
}

TEST_CASE("max_state_records bounds the state: records that find it full are dropped and counted, not joined") {
  std::mt19937_64 rng(rilltest::test_seed() + 3);
  const auto input = jointest::random_input(rng, 2, 100, 12, 1500, bound, 0.0);
  const std::size_t limit = 150;
  const Run r =
      run(input, {.kind = rs::JoinKind::regular_inner, .watermark = watermark_options(), .max_state_records = limit});
  // Without a ttl nothing leaves the state: the first `limit` arrivals are kept and joined,
  // every later one finds the state full.
  std::vector<bool> refused(input.size(), false);
  for (std::size_t i = limit; i < input.size(); ++i) refused[i] = true;
  const auto w = jointest::watermarks_before(input, bound);
  CHECK(r.changelog.rows == jointest::regular_reference(input, refused, w, 0, false));
  CHECK(r.stats.state_records == limit);
  CHECK(r.stats.over_limit == input.size() - limit);
  CHECK(r.stats.late_dropped == 0);
}
