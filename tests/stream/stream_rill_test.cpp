// The operator wired to rill: JSON events from two publishers through a Subscriber (one
// watermark source per publisher id), rows and completeness markers published with their
// `op` / `kind` headers and read back by another subscriber, over tcp and shm.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <string>

#include "stream_reference.hpp"
#include "test_seed.hpp"
#include "test_util.hpp"

namespace rs = rill::stream;
using namespace std::chrono_literals;
using streamtest::TimeMs;

TEST_CASE("row_json and the marker payload have the documented form") {
  CHECK(rs::row_json({.kind = rs::RowKind::insert, .key = "red", .start = 0, .end = 100, .value = 7, .count = 2, .detail = {}}) ==
        R"({"key":"red","start":0,"end":100,"value":7,"count":2})");
  CHECK(rs::row_json({.key = "q\"\\\n", .start = -5, .end = 5, .value = 0.5, .count = 1, .detail = {}}) ==
        R"({"key":"q\"\\\u000a","start":-5,"end":5,"value":0.5,"count":1})");
  CHECK(rs::row_json({.key = "e", .value = std::numeric_limits<double>::infinity(), .detail = {}}).find("\"value\":null") !=
        std::string::npos);
}

namespace {

void pipeline_over(const std::string& in_ep, const std::string& out_ep) {
  rill::Node node;
  auto red = node.publisher({.endpoint = in_ep, .topic = "scores/a"});
  auto blue = node.publisher({.endpoint = in_ep, .topic = "scores/b"});
  auto in = node.subscriber({.endpoints = {in_ep}, .prefix = "scores/", .policy = rill::Policy::drop_oldest(4096)});
  auto sink_pub = node.publisher({.endpoint = out_ep, .topic = "results/sum"});
  auto out = node.subscriber({.endpoints = {out_ep}, .prefix = "results/", .policy = rill::Policy::drop_oldest(4096)});
  REQUIRE(red);
  REQUIRE(blue);
  REQUIRE(in);
  REQUIRE(sink_pub);
  REQUIRE(out);
  REQUIRE(rilltest::attach(*red, *in, 1));
  REQUIRE(rilltest::attach(*blue, *in, 1));
  REQUIRE(rilltest::attach(*sink_pub, *out));

  rs::PublisherSink sink(*sink_pub);
  auto op = rs::WindowOperator::create({.window = rs::tumbling(100ms), .watermark = {.out_of_orderness = 30ms, .min_sources = 2}},
                                       sink.output());
  REQUIRE(op);
  auto source = rs::SubscriberSource::create(
      *in, {.parse = rs::json_key_value("team", "score"), .time = rs::json_time("ts")});
  REQUIRE(source);

  // Each publisher sends its events up to 30 ms out of order; the reference gets them too.
  std::mt19937_64 rng(rilltest::test_seed());
  const auto events = streamtest::random_input(rng, 2, 150, 3, 1500, 30);
  std::vector<rs::Event> sent;
  int i = 0;
  for (auto e : events) {
    auto& pub = e.source == 1000 ? *red : *blue;
    // Half the timestamps as ISO-8601 strings, half as epoch milliseconds.
    char iso[64];
    std::snprintf(iso, sizeof iso, "\"1970-01-01T00:00:%02lld.%03lldZ\"", static_cast<long long>(e.time / 1000),
                  static_cast<long long>(e.time % 1000));
    const std::string ts = (i++ % 2 == 0) ? std::to_string(e.time) : std::string(iso);
    const std::string json = R"({"team":")" + e.key + R"(","score":)" + std::to_string(static_cast<int>(e.value)) +
                             R"(,"ts":)" + ts + "}";
    REQUIRE(pub.publish_text(json));
    e.source = pub.id();
    sent.push_back(e);
  }
  REQUIRE(red->publish_text("not json"));
  REQUIRE(blue->publish_text(R"({"team":"x","score":1})"));  // no ts

  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (source->stats().messages < events.size() + 2 && std::chrono::steady_clock::now() < deadline) {
    source->poll(*op, 256, 5ms);
  }
  REQUIRE(source->stats().events == events.size());
  CHECK(source->stats().bad_input == 2);
  CHECK(op->watermarks().sources() == 2);  // one watermark per publisher id
  CHECK(op->stats().late_dropped == 0);
  op->finish();
  CHECK(sink.stats().failed == 0);

  // Read the output back: rows by their `op` header, markers by `kind`.
  std::multiset<std::string> rows;
  std::vector<std::string> markers;
  std::uint64_t untagged = 0;
  std::size_t got = 0;
  const std::size_t want = sink.stats().rows + sink.stats().markers;
  REQUIRE(rilltest::poll_until(
      *out,
      [&](const rill::MessageView& m) {
        ++got;
        if (auto opk = m.header("op")) {
          CHECK(*opk == "+I");
          rows.insert(std::string(m.payload_text()));
        } else if (auto kind = m.header("kind")) {
          CHECK(*kind == "watermark");
          markers.emplace_back(m.payload_text());
        } else {
          ++untagged;
        }
      },
      [&] { return got == want; }));
  CHECK(untagged == 0);
  std::multiset<std::string> expected;
  for (const auto& [key, start, end, value, count] : streamtest::reference(sent, rs::tumbling(100ms), streamtest::fold_sum)) {
    expected.insert(rs::row_json({.key = key, .start = start, .end = end, .value = value, .count = count, .detail = {}}));
  }
  CHECK(rows == expected);
  REQUIRE(!markers.empty());
  CHECK(markers.back() == R"({"watermark":9223372036854775807})");  // end of input
  CHECK(markers.front().starts_with(R"({"watermark":)"));
}

}  // namespace

TEST_CASE("JSON events from two tcp publishers become windowed rows on a tcp output topic") {
  pipeline_over(rilltest::fresh_endpoint(), rilltest::fresh_endpoint());
}

#ifdef RILL_TEST_SHM_STREAM
TEST_CASE("the same pipeline over shared memory") {
  pipeline_over(rilltest::fresh_shm_endpoint(), rilltest::fresh_shm_endpoint());
}
#endif

TEST_CASE("envelope_time reads the publish timestamp; a source without parse is refused") {
  rill::Node node;
  const auto ep = rilltest::fresh_endpoint();
  auto pub = node.publisher({.endpoint = ep, .topic = "t"});
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = ""});
  REQUIRE(pub);
  REQUIRE(sub);
  REQUIRE(rilltest::attach(*pub, *sub));
  const auto before = rill::wall_clock_ns() / 1'000'000;
  REQUIRE(pub->publish_text("x"));
  std::optional<TimeMs> t;
  std::int64_t stamp_ns = 0;
  REQUIRE(rilltest::poll_until(
      *sub,
      [&](const rill::MessageView& m) {
        t = rs::envelope_time()(m);
        stamp_ns = m.timestamp_ns();
      },
      [&] { return t.has_value(); }));
  CHECK(*t == stamp_ns / 1'000'000);
  CHECK(*t >= before);
  auto bad = rs::SubscriberSource::create(*sub, {});
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == rill::Errc::invalid_argument);
}
