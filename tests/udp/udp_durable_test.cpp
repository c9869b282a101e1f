// Durability over reliable udp multicast, in one process over real loopback multicast:
// requests that cannot be honoured are refused clearly; a durable subscription resumes
// from its last ack across restarts of either side; a catch-up from a persistent log
// survives 5% loss (the transport's seeded fault injection) in both directions.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "durable_checks.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

using TempDir = rilltest::ShmTempDir;  // log and state directories: fsync is cheap there

// A group and port of its own per case and per process, so parallel runs never meet.
std::string udp_endpoint(const std::string& query = {}) {
  return rilltest::udp_test_endpoint(252, 34000, query.empty() ? "linger_ms=300" : "linger_ms=300&" + query);
}

std::string payload_text(std::uint64_t i) {
  // Every 97th message is larger than a datagram: its history goes as fragments.
  return i % 97 == 0 ? std::string(5000, static_cast<char>('a' + i % 26)) : "m" + std::to_string(i);
}

rill::SubscriberOptions durable(const std::string& ep, const TempDir& state, const std::string& name,
                                rill::StartFrom from = rill::StartFrom::last_ack) {
  return {.endpoints = {ep},
          .prefix = "t",
          .policy = rill::Policy::backpressure(256),
          .durability = rill::Durability::persistent(),
          .durable_name = name,
          .from = from,
          .state_dir = state.str()};
}

}  // namespace

TEST_CASE("durable requests and consumer groups need reliable=1") {
  TempDir dir;
  rill::Node node;
  auto pub = node.publisher(
      {.endpoint = udp_endpoint("reliable=0"), .topic = "t", .durability = rill::Durability::transient_local(10)});
  REQUIRE_FALSE(pub);
  CHECK(pub.error().code == rill::Errc::invalid_argument);
  CHECK(pub.error().message().find("reliable=1") != std::string::npos);
  auto sub = node.subscriber({.endpoints = {udp_endpoint("reliable=0")},
                              .prefix = "t",
                              .durability = rill::Durability::persistent(),
                              .durable_name = "x",
                              .state_dir = dir.str()});
  REQUIRE_FALSE(sub);
  CHECK(sub.error().code == rill::Errc::invalid_argument);
  CHECK(sub.error().message().find("best effort cannot promise a seamless history") != std::string::npos);
  rill::SubscriberOptions grouped{.endpoints = {udp_endpoint("reliable=0")}, .prefix = "t"};
  grouped.group = "workers";
  auto group = node.subscriber(grouped);
  REQUIRE_FALSE(group);
  CHECK(group.error().code == rill::Errc::invalid_argument);
  CHECK(group.error().message().find("consumer group member needs reliable=1") != std::string::npos);
  grouped.endpoints = {udp_endpoint()};
  CHECK(node.subscriber(grouped));
  // Reliable udp takes both.
  CHECK(
      node.publisher({.endpoint = udp_endpoint(), .topic = "t", .durability = rill::Durability::transient_local(10)}));
  CHECK(node.subscriber({.endpoints = {udp_endpoint()},
                         .prefix = "t",
                         .durability = rill::Durability::persistent(),
                         .durable_name = "y",
                         .state_dir = dir.str()}));
}

TEST_CASE("a volatile publisher refuses a durable request over udp: on_incompatible once, nothing delivered") {
  // It asks again now and then (1 s apart): still refused, still reported once.
  TempDir dir;
  const auto ep = udp_endpoint();
  rilltest::check_volatile_refuses_persistent(ep, durable(ep, dir, "x"), 1500ms);
}

TEST_CASE("a durable subscription resumes from its last ack across restarts of either side, each message once") {
  rill::Node node;
  TempDir state;
  TempDir log_dir;
  const auto ep = udp_endpoint();
  const rill::PublisherOptions popts{.endpoint = ep,
                                     .topic = "t",
                                     .publish_timeout = 2ms,
                                     .durability = rill::Durability::persistent(log_dir.str()),
                                     .log = {.fsync = rill::FsyncPolicy::never()}};
  std::optional<rill::Publisher> pub(*node.publisher(popts));
  std::vector<std::uint64_t> seqs;
  const auto h = [&](const rill::MessageView& m) { seqs.push_back(m.sequence()); };
  // One thread drives both: a publish held by the subscription's window (it may be
  // catching up from an older stored ack) gives up after a moment, the subscription is
  // polled, and it is tried again.
  const auto publish = [&](rill::Subscriber* sub, const char* text) {
    const auto until = clock_type::now() + 10s;
    auto r = pub->publish_text(text);
    while (!r && r.error().code == rill::Errc::timed_out && clock_type::now() < until) {
      if (sub != nullptr) sub->poll(h, 64);
      r = pub->publish_text(text);
    }
    return r.has_value();
  };
  const auto drive = [&](rill::Subscriber& sub, std::uint64_t last) {
    const auto deadline = clock_type::now() + 20s;
    while ((seqs.empty() || seqs.back() < last) && clock_type::now() < deadline) {
      (void)pub->service();
      sub.wait_poll(h, seqs.empty() ? 64 : std::min<std::uint64_t>(64, last - seqs.back()), 1ms);
    }
    return !seqs.empty() && seqs.back() == last;
  };
  for (int i = 0; i < 1000; ++i) REQUIRE(publish(nullptr, "a"));
  {
    auto sub = node.subscriber(durable(ep, state, "resume"));
    REQUIRE(sub);
    REQUIRE(drive(*sub, 400));  // from the start (no ack yet), and only 400 of them
  }
  for (int i = 0; i < 500; ++i) REQUIRE(publish(nullptr, "b"));  // 1001..1500 while it is away
  auto sub = node.subscriber(durable(ep, state, "resume"));
  REQUIRE(sub);
  REQUIRE(drive(*sub, 1500));
  // The publisher restarts from its log (same id, sequence continues, a new port) under
  // the subscriber.
  const auto id = pub->id();
  pub.reset();
  pub.emplace(*node.publisher(popts));
  CHECK(pub->id() == id);
  REQUIRE(rilltest::attach(*pub, *sub));
  for (int i = 0; i < 100; ++i) REQUIRE(publish(&*sub, "c"));
  REQUIRE(drive(*sub, 1600));
  std::vector<std::uint64_t> want(1600);
  for (std::uint64_t i = 0; i < want.size(); ++i) want[i] = i + 1;
  CHECK(seqs == want);
  CHECK(sub->stats().gaps == 0);
  // The position reached the publisher and is stored under the durable name.
  const auto deadline = clock_type::now() + 10s;
  while ((sub->stats().acked < 1600 || pub->stats().acks == 0) && clock_type::now() < deadline) {
    (void)pub->service();
    sub->wait_poll(h, 16, 1ms);
  }
  CHECK(sub->stats().acked == 1600);
  CHECK(pub->stats().acks > 0);
  REQUIRE(pub->log() != nullptr);
}

TEST_CASE("catching up 20,000 messages from a persistent log through 5% loss: all of them, in order, once") {
  constexpr std::uint64_t total = 20'000;
  rill::Node node;
  TempDir state;
  TempDir log_dir;
  // The publisher loses 5% of STATUS and NAKs; the subscriber 5% of everything it
  // receives (history by unicast, live by multicast, heartbeats, the WELCOME), and both
  // see reordering and duplicates.
  const auto base = udp_endpoint();
  // A small retransmit window: most of what is lost must be answered from the log.
  const auto pub_ep = base + "&window=400000&fault_ctl=0.05,0.02,0.02&fault_seed=7";
  const auto sub_ep = base + "&fault_data=0.05,0.02,0.02&fault_ctl=0.05,0.02,0.02&fault_seed=11";
  auto pub = node.publisher({.endpoint = pub_ep,
                             .topic = "t/loss",
                             .publish_timeout = 2ms,
                             .durability = rill::Durability::persistent(log_dir.str()),
                             .log = {.fsync = rill::FsyncPolicy::never()}});
  REQUIRE(pub);
  for (std::uint64_t i = 1; i <= total; ++i) REQUIRE(pub->publish_text(payload_text(i)));
  std::vector<std::uint64_t> seqs;
  std::uint64_t bad_payload = 0;
  const auto h = [&](const rill::MessageView& m) {
    seqs.push_back(m.sequence());
    const auto want = payload_text(m.sequence() <= total ? m.sequence() : 0);
    const auto p = m.payload();
    if (m.sequence() <= total && (p.size() != want.size() || std::memcmp(p.data(), want.data(), p.size()) != 0)) {
      ++bad_payload;
    }
  };
  auto sub = node.subscriber(durable(sub_ep, state, "lossy", rill::StartFrom::start));
  REQUIRE(sub);
  auto deadline = clock_type::now() + 60s;
  while (seqs.size() < total && clock_type::now() < deadline) {
    (void)pub->service();
    sub->wait_poll(h, 256, 1ms);
  }
  // Then live ones, through the same loss: the seam has no gap and no duplicate.
  // (One thread drives both: a publish that waits for the subscriber's window gives up
  // after a moment, the subscriber is polled, and it is tried again.)
  for (std::uint64_t i = total + 1; i <= total + 500; ++i) {
    const auto until = clock_type::now() + 10s;
    auto r = pub->publish_text("live");
    while (!r && r.error().code == rill::Errc::timed_out && clock_type::now() < until) {
      sub->poll(h, 64);
      r = pub->publish_text("live");
    }
    REQUIRE(r);
    sub->poll(h, 64);
  }
  deadline = clock_type::now() + 30s;
  while (seqs.size() < total + 500 && clock_type::now() < deadline) {
    (void)pub->service();
    sub->wait_poll(h, 256, 1ms);
  }
  REQUIRE(seqs.size() == total + 500);
  bool in_order = true;
  for (std::uint64_t i = 0; i < seqs.size(); ++i) in_order = in_order && seqs[i] == i + 1;
  CHECK(in_order);
  CHECK(bad_payload == 0);
  CHECK(sub->stats().gaps == 0);
  CHECK(sub->stats().duplicates == 0);
  CHECK(pub->stats().replayed >= total);
}
