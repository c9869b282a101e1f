// Publisher and subscriber in one process over real loopback multicast, with the
// transport's seeded fault injection: loss, reordering and duplication of data (at the
// subscriber) and of NAKs/status (at the publisher).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "rill/rill.hpp"

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

// A group and port of its own per case and per process, so parallel runs never meet.
std::string fresh_endpoint(const std::string& query) {
  static int k = 0;
  ++k;
  const auto pid = static_cast<unsigned>(getpid());
  const auto port = 20000 + (pid % 4000) * 8 + static_cast<unsigned>(k);
  return "udp://239.255." + std::to_string(pid % 250) + "." + std::to_string(k) + ":" + std::to_string(port) +
         "?iface=127.0.0.1&" + query;
}

std::string with(const std::string& ep, const std::string& extra) {
  return ep + "&" + extra;
}

// Waits until the publisher sees `n` subscriptions (the subscriber must be polled to join).
void attach(rill::Publisher& pub, rill::Subscriber* sub) {
  const auto deadline = clock_type::now() + 5s;
  while (!pub.wait_for_subscribers(1, 5ms)) {
    if (sub != nullptr) sub->poll([](const rill::MessageView&) {}, 0);
    REQUIRE(clock_type::now() < deadline);
  }
}

struct Seen {
  std::vector<std::uint64_t> seqs;
  std::uint64_t bad_payload = 0;
};

std::vector<std::byte> payload_for(std::uint64_t seq, std::size_t size) {
  std::vector<std::byte> p(size);
  for (std::size_t i = 0; i < size; ++i) p[i] = std::byte(static_cast<unsigned char>(seq * 31 + i));
  return p;
}

// Publishes `count` messages of `size` bytes with a threaded subscription, lets the
// publisher close (BYE, lingering for retransmits), and returns what the handler saw.
std::pair<Seen, rill::SubscriberStats> run(const std::string& pub_ep, const std::string& sub_ep, std::size_t count,
                                           std::size_t size, bool reliable = true) {
  rill::Node node;
  Seen seen;
  std::atomic<std::uint64_t> got{0};
  auto sub = node.subscribe({.endpoints = {sub_ep},
                             .prefix = "f/",
                             .policy = rill::Policy::drop_oldest(65536),
                             .idle = rill::IdleStrategy::block},
                            [&](const rill::MessageView& m) {
                              seen.seqs.push_back(m.sequence());
                              if (m.payload().size() != size ||
                                  std::memcmp(m.payload().data(), payload_for(m.sequence(), size).data(), size) != 0) {
                                ++seen.bad_payload;
                              }
                              got.fetch_add(1, std::memory_order_relaxed);
                            });
  REQUIRE(sub);
  {
    auto pub = node.publisher({.endpoint = pub_ep, .topic = "f/x"});
    REQUIRE(pub);
    attach(*pub, nullptr);
    for (std::size_t i = 0; i < count; ++i) {
      REQUIRE(pub->publish_bytes(payload_for(pub->next_sequence(), size)));
      // Pace a little so the kernel's socket buffers are not what loses data here.
      if (i % 64 == 63) {
        pub->service();
        while (pub->next_sequence() - 1 > got.load() + 4096) pub->service();
      }
    }
    // Reliable: wait for everything. Best effort: closing (BYE, confirmed by the
    // subscriber, which reads it after the data) is enough.
    const auto deadline = clock_type::now() + 30s;
    while (reliable && got.load() < count && clock_type::now() < deadline) {
      pub->service();
      std::this_thread::sleep_for(200us);
    }
  }  // close: BYE, and retransmits until the subscriber confirmed
  const auto deadline = clock_type::now() + 10s;
  rill::SubscriberStats stats;
  do {
    std::this_thread::sleep_for(20ms);
    stats = sub->stats();
  } while (stats.received + stats.gaps < count && clock_type::now() < deadline);
  sub->stop();
  return {std::move(seen), sub->stats()};
}

constexpr const char* harsh = "0.1,0.25,0.01";  // 10% loss, 25% reordering, 1% duplication

}  // namespace

TEST_CASE("reliable: 10% loss, 25% reordering, 1% duplication on data and NAKs: complete and in order") {
  const auto ep = fresh_endpoint("reliable=1&linger_ms=5000");
  const auto sub_ep = with(ep, std::string("fault_data=") + harsh + "&fault_ctl=" + harsh + "&fault_seed=11");
  const auto pub_ep = with(ep, std::string("fault_ctl=") + harsh + "&fault_seed=23");
  constexpr std::size_t count = 20000;
  const auto [seen, stats] = run(pub_ep, sub_ep, count, 100);
  REQUIRE(seen.seqs.size() == count);
  bool in_order = true;
  for (std::size_t i = 0; i < count; ++i) in_order = in_order && seen.seqs[i] == i + 1;
  CHECK(in_order);
  CHECK(seen.bad_payload == 0);
  CHECK(stats.gaps == 0);
  CHECK(stats.duplicates == 0);  // the transport suppressed them before the core
}

TEST_CASE("reliable: fragmented 1 MiB messages survive 10% loss and reordering of fragments") {
  const auto ep = fresh_endpoint("reliable=1&linger_ms=5000");
  const auto sub_ep = with(ep, std::string("fault_data=") + harsh + "&fault_ctl=" + harsh + "&fault_seed=5");
  const auto pub_ep = with(ep, std::string("fault_ctl=") + harsh + "&fault_seed=6");
  const auto [seen, stats] = run(pub_ep, sub_ep, 12, 1u << 20);
  REQUIRE(seen.seqs.size() == 12);
  CHECK(seen.seqs.back() == 12);
  CHECK(seen.bad_payload == 0);
  CHECK(stats.gaps == 0);
}

// A publisher that goes quiet after a burst: its last messages and the NAK answers still owed
// reach the subscriber through the idle helper (heartbeats, retransmits), with no call of
// service() by the application. With idle_service = 0 (no helper) they do not: the control case
// proves that the loss really left something to recover.
std::uint64_t quiet_publisher_run(std::chrono::milliseconds idle_service, std::chrono::milliseconds wait) {
  const auto ep = fresh_endpoint("reliable=1&linger_ms=200");
  const auto sub_ep = with(ep, "fault_data=0.3,0,0&fault_seed=17");  // 30% of data datagrams lost
  rill::Node node;
  std::atomic<std::uint64_t> got{0};
  auto sub = node.subscribe({.endpoints = {sub_ep}, .prefix = "f/", .policy = rill::Policy::drop_oldest(65536),
                             .idle = rill::IdleStrategy::block},
                            [&](const rill::MessageView&) { got.fetch_add(1, std::memory_order_relaxed); });
  REQUIRE(sub);
  auto pub = node.publisher({.endpoint = ep, .topic = "f/x", .idle_service = idle_service});
  REQUIRE(pub);
  attach(*pub, nullptr);
  constexpr std::uint64_t count = 2000;
  for (std::uint64_t i = 0; i < count; ++i) REQUIRE(pub->publish_bytes(payload_for(i + 1, 64)));
  // Quiet from here on: no publish(), no service(), the publisher stays open.
  const auto deadline = clock_type::now() + wait;
  while (got.load() < count && clock_type::now() < deadline) std::this_thread::sleep_for(5ms);
  const auto result = got.load();
  sub->stop();
  return result;
}

TEST_CASE("reliable: a quiet publisher's lost tail is recovered without the application calling service()") {
  CHECK(quiet_publisher_run(5ms, 20s) == 2000);
  // Without the helper the same run stays short of it (what the helper is there for).
  CHECK(quiet_publisher_run(0ms, 1500ms) < 2000);
}

TEST_CASE("best effort: 10% data loss shows up exactly as gaps (received + gaps == sent)") {
  const auto ep = fresh_endpoint("reliable=0&linger_ms=3000");
  const auto sub_ep = with(ep, "fault_data=0.1,0,0.01&fault_seed=3");
  constexpr std::size_t count = 20000;
  const auto [seen, stats] = run(ep, sub_ep, count, 64, false);
  CHECK(stats.received + stats.gaps == count);
  CHECK(stats.gaps > count / 20);  // about 10%: the loss really happened
  CHECK(stats.gaps < count / 5);
  CHECK(seen.seqs.size() == stats.received);
  bool increasing = true;
  for (std::size_t i = 1; i < seen.seqs.size(); ++i) increasing = increasing && seen.seqs[i] > seen.seqs[i - 1];
  CHECK(increasing);
}

TEST_CASE("backpressure: a full window makes publish() wait, time out, and name the subscriber") {
  const auto ep = fresh_endpoint("reliable=1&linger_ms=200");
  rill::Node node;
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = "f/", .policy = rill::Policy::backpressure(8)});
  REQUIRE(sub);
  auto pub = node.publisher({.endpoint = ep, .topic = "f/x", .publish_timeout = 200ms});
  REQUIRE(pub);
  attach(*pub, &*sub);
  const std::string text = "payload";
  for (int i = 0; i < 8; ++i) REQUIRE(pub->publish_text(text));
  const auto t0 = clock_type::now();
  auto r = pub->publish_text(text);
  const auto waited = clock_type::now() - t0;
  REQUIRE_FALSE(r);
  CHECK(r.error().code == rill::Errc::timed_out);
  CHECK(waited >= 190ms);
  CHECK(pub->stats().timeouts == 1);
  CHECK(pub->stats().blocked_ns >= 190'000'000u);
  CHECK(pub->stats().last_blocker == sub->id());
  CHECK(pub->next_sequence() == 9);  // the timed-out message was not published
  // Consuming opens the window again.
  std::size_t handled = 0;
  const auto deadline = clock_type::now() + 5s;
  while (handled < 8 && clock_type::now() < deadline)
    handled += sub->wait_poll([](const rill::MessageView&) {}, 64, 10ms);
  CHECK(handled == 8);
  CHECK(pub->publish_text(text));
  const auto stats = sub->stats();
  CHECK(stats.gaps == 0);
}
