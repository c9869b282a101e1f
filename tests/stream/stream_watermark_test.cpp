// Watermarks per source: bounded out-of-orderness, the minimum over live sources, idle
// sources that stop (and resume) holding it back, the all-idle close, late alerts; and the
// payload time extractors.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <vector>

#include "rill/stream.hpp"

namespace rs = rill::stream;
using namespace std::chrono_literals;
using rs::TimeMs;

namespace {
// A processing-time clock the test moves by hand.
struct ManualClock {
  std::int64_t now = 1'000'000;
  rs::Clock fn() {
    return [this] { return now; };
  }
};

rs::Event ev(std::uint64_t source, TimeMs t) { return {.key = "k", .value = 1, .time = t, .source = source}; }
}  // namespace

TEST_CASE("a source's watermark is its latest event time minus the bound; the operator's is the minimum") {
  ManualClock clock;
  rs::WatermarkTracker w({.out_of_orderness = 5ms, .clock = clock.fn()});
  CHECK(w.update() == rs::min_time);
  w.observe(1, 100);
  CHECK(w.update() == 95);
  w.observe(1, 90);  // out of order: the latest stays 100
  CHECK(w.update() == 95);
  w.observe(2, 50);
  CHECK(w.update() == 95);  // never goes back, though source 2 is behind
  w.observe(1, 200);
  CHECK(w.update() == 95);  // held by source 2 at 45
  w.observe(2, 150);
  CHECK(w.update() == 145);
  CHECK(w.active_sources() == 2);
}

TEST_CASE("an idle source stops holding the watermark back and holds it again when it speaks") {
  ManualClock clock;
  std::vector<TimeMs> markers;
  std::vector<rs::Row> rows;
  auto op = rs::WindowOperator::create(
      {.window = rs::tumbling(10ms), .aggregate = rs::count(), .watermark = {.idle_after = 100ms, .clock = clock.fn()}},
      {.row = [&](const rs::Row& r) { rows.push_back(r); }, .watermark = [&](TimeMs w) { markers.push_back(w); }});
  REQUIRE(op);
  op->process(ev(2, 5));
  op->process(ev(1, 10));
  CHECK(op->watermark() == 5);
  op->process(ev(1, 50));
  CHECK(op->watermark() == 5);  // source 2 holds it
  CHECK(rows.empty());
  clock.now += 99;
  op->tick();
  CHECK(op->watermark() == 5);  // not idle yet
  clock.now += 1;
  op->tick();  // source 1 spoke 100 ms ago too: both idle, W stays
  CHECK(op->watermark() == 5);
  op->process(ev(1, 55));  // source 1 is live again, source 2 is idle
  CHECK(op->watermark() == 55);
  CHECK(op->watermarks().active_sources() == 1);
  CHECK(rows.size() == 2);  // [0, 10) and [10, 20) closed; [50, 60) is still open
  CHECK(markers == std::vector<TimeMs>{55});
  op->process(ev(2, 60));  // source 2 speaks: it holds the watermark again
  op->process(ev(1, 90));
  CHECK(op->watermark() == 60);
  op->process(ev(2, 95));
  CHECK(op->watermark() == 90);
  op->process(ev(2, 40));  // behind the watermark: late
  CHECK(op->stats().late_dropped == 1);
}

TEST_CASE("with every source idle, close_when_all_idle moves the watermark with the wall clock") {
  ManualClock clock;
  std::vector<rs::Row> rows;
  std::vector<TimeMs> markers;
  auto op = rs::WindowOperator::create(
      {.window = rs::tumbling(10ms),
       .watermark = {.out_of_orderness = 5ms, .close_when_all_idle = 200ms, .clock = clock.fn()}},
      {.row = [&](const rs::Row& r) { rows.push_back(r); }, .watermark = [&](TimeMs w) { markers.push_back(w); }});
  REQUIRE(op);
  op->process(ev(1, 3));
  op->tick();
  CHECK(rows.empty());
  clock.now += 199;
  op->tick();
  CHECK(rows.empty());
  clock.now += 1;
  op->tick();  // quiet for 200 ms: W = 3 + 200
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].start == 0);
  CHECK(rows[0].end == 10);
  CHECK(markers == std::vector<TimeMs>{203});
}

TEST_CASE("the late alert fires when the late fraction over a period passes the threshold") {
  ManualClock clock;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> alerts;
  auto op = rs::WindowOperator::create(
      {.window = rs::tumbling(10ms),
       .watermark = {.clock = clock.fn()},
       .late_alert = {.fraction = 0.25,
                      .period = 1000ms,
                      .callback = [&](std::uint64_t late, std::uint64_t total) { alerts.emplace_back(late, total); }}},
      {});
  REQUIRE(op);
  for (int i = 0; i < 8; ++i) op->process(ev(1, 100 + i));
  op->process(ev(1, 50));  // 1 late of 9: under 25 %
  clock.now += 1000;
  op->tick();
  CHECK(alerts.empty());
  for (int i = 0; i < 6; ++i) op->process(ev(1, 200 + i));
  for (int i = 0; i < 3; ++i) op->process(ev(1, 10));  // 3 of 9: over 25 %
  clock.now += 1000;
  op->tick();
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0] == std::pair<std::uint64_t, std::uint64_t>{3, 9});
  CHECK(op->stats().alerts == 1);
  CHECK(op->stats().late_dropped == 4);
  op->process(ev(1, 300));
  op->process(ev(1, 20));  // 1 of 2 late, in a period cut short by the end of input
  op->finish();
  REQUIRE(alerts.size() == 2);
  CHECK(alerts[1] == std::pair<std::uint64_t, std::uint64_t>{1, 2});
}

TEST_CASE("ISO-8601 timestamps parse to epoch milliseconds; malformed ones are refused") {
  CHECK(rs::parse_iso8601_ms("1970-01-01T00:00:00Z") == 0);
  CHECK(rs::parse_iso8601_ms("1970-01-01T00:00:01.5Z") == 1500);
  CHECK(rs::parse_iso8601_ms("2024-02-29T12:34:56.789Z") == 1709210096789);
  CHECK(rs::parse_iso8601_ms("2000-03-01T00:00:00.000123Z") == 951868800000);
  CHECK(rs::parse_iso8601_ms("1969-12-31T23:59:59.999Z") == -1);
  for (const char* bad : {"", "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z",
                          "2024-01-01T24:00:00Z", "2024-01-01 00:00:00Z", "2024-01-01T00:00:00", "2024-01-01T00:00:00.Z",
                          "2024-01-01T00:00:00+01:00", "2024-01-01T00:00:00Zjunk", "x024-01-01T00:00:00Z"}) {
    CAPTURE(bad);
    CHECK_FALSE(rs::parse_iso8601_ms(bad));
  }
}
