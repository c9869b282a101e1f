// Joins wired to rill: two topics (one per input) read through JoinSources, an interval join,
// and its rows published by a JoinSink with their `op` header, read back by another
// subscriber and compared with a nested-loop reference, over tcp and shm.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <set>
#include <string>

#include "join_reference.hpp"
#include "test_seed.hpp"
#include "test_util.hpp"

namespace rs = rill::stream;
using namespace std::chrono_literals;
using jointest::Side;
using jointest::TimeMs;

TEST_CASE("join_row_json has the documented form") {
  const rs::JoinEvent l{.key = "k", .payload = R"({"a":1})", .time = 5};
  const rs::JoinEvent r{.key = "k", .payload = R"({"b":2})", .time = 9};
  CHECK(rs::join_row_json({.key = "k", .left = &l, .right = &r, .time = 9}) ==
        R"({"key":"k","time":9,"left":{"a":1},"right":{"b":2}})");
  CHECK(rs::join_row_json({.kind = rs::RowKind::remove, .key = "q\"", .left = &l, .time = 5}) ==
        R"({"key":"q\"","time":5,"left":{"a":1},"right":null})");
  CHECK(rs::join_row_json({.key = "k", .left = &l, .right = &r, .time = 99, .window_start = 0, .window_end = 100}) ==
        R"({"key":"k","time":99,"window_start":0,"window_end":100,"left":{"a":1},"right":{"b":2}})");
}

namespace {

void join_over(const std::string& in_ep, const std::string& out_ep) {
  rill::Node node;
  auto orders = node.publisher({.endpoint = in_ep, .topic = "orders/eu"});
  auto payments = node.publisher({.endpoint = in_ep, .topic = "payments/eu"});
  auto left_in =
      node.subscriber({.endpoints = {in_ep}, .prefix = "orders/", .policy = rill::Policy::drop_oldest(4096)});
  auto right_in =
      node.subscriber({.endpoints = {in_ep}, .prefix = "payments/", .policy = rill::Policy::drop_oldest(4096)});
  auto sink_pub = node.publisher({.endpoint = out_ep, .topic = "joined/paid"});
  auto out = node.subscriber({.endpoints = {out_ep}, .prefix = "joined/", .policy = rill::Policy::drop_oldest(65536)});
  REQUIRE(orders);
  REQUIRE(payments);
  REQUIRE(left_in);
  REQUIRE(right_in);
  REQUIRE(sink_pub);
  REQUIRE(out);
  REQUIRE(rilltest::attach(*orders, *left_in));
  REQUIRE(rilltest::attach(*payments, *right_in));
  REQUIRE(rilltest::attach(*sink_pub, *out));

  rs::JoinSink sink(*sink_pub);
  auto join = rs::JoinOperator::create(
      {.kind = rs::JoinKind::interval, .lower = 20ms, .upper = 50ms, .watermark = {.out_of_orderness = 30ms}},
      sink.output());
  REQUIRE(join);
  auto left =
      rs::JoinSource::create(*left_in, {.side = Side::left, .key = rs::json_key("id"), .time = rs::json_time("ts")});
  auto right =
      rs::JoinSource::create(*right_in, {.side = Side::right, .key = rs::json_key("id"), .time = rs::json_time("ts")});
  REQUIRE(left);
  REQUIRE(right);

  // Each topic's records up to 30 ms out of order: none late, whatever the interleaving.
  std::mt19937_64 rng(rilltest::test_seed());
  auto input = jointest::random_input(rng, 1, 150, 4, 1500, 30, 0.0);
  for (auto& a : input) {
    a.event.payload =
        R"({"id":")" + a.event.key + R"(","ts":)" + std::to_string(a.event.time) + R"(,"n":)" + a.event.payload + "}";
    REQUIRE((a.side == Side::left ? *orders : *payments).publish_text(a.event.payload));
  }
  REQUIRE(orders->publish_text(R"({"ts":5})"));  // no id: bad input, counted
  const std::uint64_t per_side = 151;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while ((left->stats().messages < per_side || right->stats().messages < per_side - 1) &&
         std::chrono::steady_clock::now() < deadline) {
    left->poll(*join, 64, 1ms);
    right->poll(*join, 64, 1ms);
  }
  CHECK(left->stats().bad_input == 1);
  REQUIRE(left->stats().events + right->stats().events == input.size());
  CHECK(join->stats().late_dropped == 0);
  join->finish();
  CHECK(sink.stats().failed == 0);

  std::multiset<std::string> expected;
  const std::vector<bool> late(input.size(), false);
  for (const auto& [key, l, r, time, s, e] : jointest::interval_reference(input, late, 20, 50)) {
    expected.insert(R"({"key":")" + key + R"(","time":)" + std::to_string(time) + R"(,"left":)" + l + R"(,"right":)" +
                    r + "}");
  }
  std::multiset<std::string> rows;
  std::size_t got = 0;
  REQUIRE(rilltest::poll_until(
      *out,
      [&](const rill::MessageView& m) {
        ++got;
        CHECK(m.header("op").value_or("") == "+I");
        rows.insert(std::string(m.payload_text()));
      },
      [&] { return got == sink.stats().rows; }));
  CHECK(!expected.empty());
  CHECK(rows == expected);
}

}  // namespace

TEST_CASE("orders and payments on two tcp topics become interval-joined rows on a tcp output topic") {
  join_over(rilltest::fresh_endpoint(), rilltest::fresh_endpoint());
}

#ifdef RILL_TEST_SHM_STREAM
TEST_CASE("the same join over shared memory") {
  join_over(rilltest::fresh_shm_endpoint(), rilltest::fresh_shm_endpoint());
}
#endif

TEST_CASE("a join source without a key extractor is refused") {
  rill::Node node;
  const auto ep = rilltest::fresh_endpoint();
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = ""});
  REQUIRE(sub);
  CHECK(rs::JoinSource::create(*sub, {}).error().code == rill::Errc::invalid_argument);
}
