// The conformance suite every transport passes: ordering, gaps, each policy, large
// messages, and peers going away. Each case runs once per transport built in.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "test_util.hpp"

using namespace std::chrono_literals;
using rilltest::attach;
using rilltest::poll_until;

namespace {

struct Transport {
  const char* name;
  std::string (*endpoint)();
  // The subscription's queue is filled by the publisher itself (shm rings), so what a
  // policy keeps does not depend on when the subscriber happened to look.
  bool exact_queue;
};

const std::vector<Transport>& transports() {
  static const std::vector<Transport> all = {
      {"tcp", [] { return rilltest::fresh_endpoint(); }, false},
#ifdef RILL_TEST_SHM
      {"shm", [] { return rilltest::fresh_shm_endpoint(); }, true},
#endif
#ifdef RILL_TEST_UDP_CONFORMANCE
      {"udp", [] { return rilltest::fresh_udp_endpoint(); }, false},
#endif
  };
  return all;
}

// What one subscription saw, message by message.
struct Seen {
  std::vector<std::uint64_t> seqs;
  std::uint64_t lost_in_events = 0;
  void operator()(const rill::MessageView& m) { seqs.push_back(m.sequence()); }
};

rill::SubscriberOptions options_for(const std::string& ep, rill::Policy policy, Seen& seen) {
  return {.endpoints = {ep},
          .prefix = "c/",
          .policy = policy,
          .on_loss = [&seen](const rill::LossEvent& e) { seen.lost_in_events += e.last - e.first + 1; }};
}

bool ascending(const std::vector<std::uint64_t>& v) {
  for (std::size_t i = 1; i < v.size(); ++i) {
    if (v[i] <= v[i - 1]) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("messages arrive complete and in order") {
  for (const auto& t : transports()) {
    CAPTURE(std::string(t.name));
    rill::Node node;
    const auto ep = t.endpoint();
    Seen seen;
    // One thread both publishes and polls: a publish() that finds the window full
    // returns at once, and the loop polls before retrying.
    auto pub = node.publisher({.endpoint = ep, .topic = "c/order", .publish_timeout = 1ms});
    auto sub = node.subscriber(options_for(ep, rill::Policy::backpressure(64), seen));
    REQUIRE(pub);
    REQUIRE(sub);
    REQUIRE(attach(*pub, *sub));
    constexpr std::uint64_t n = 5000;
    for (std::uint64_t i = 0; i < n; ++i) {
      auto r = pub->publish_text("x");
      while (!r && r.error().code == rill::Errc::timed_out) {
        sub->poll(std::ref(seen), 64);
        r = pub->publish_text("x");
      }
      REQUIRE(r);
      sub->poll(std::ref(seen), 64);
    }
    REQUIRE(poll_until(*sub, std::ref(seen), [&] { return seen.seqs.size() == n; }));
    CHECK(seen.seqs.front() == 1);
    CHECK(seen.seqs.back() == n);
    CHECK(ascending(seen.seqs));
    CHECK(sub->stats().gaps == 0);
    CHECK(sub->stats().dropped == 0);
  }
}

TEST_CASE("drop_oldest keeps the newest and counts every discarded message as a gap") {
  for (const auto& t : transports()) {
    CAPTURE(std::string(t.name));
    rill::Node node;
    const auto ep = t.endpoint();
    Seen seen;
    auto pub = node.publisher({.endpoint = ep, .topic = "c/oldest"});
    auto sub = node.subscriber(options_for(ep, rill::Policy::drop_oldest(10), seen));
    REQUIRE(attach(*pub, *sub));
    constexpr std::uint64_t n = 300;
    for (std::uint64_t i = 0; i < n; ++i) REQUIRE(pub->publish_text("y"));
    REQUIRE(poll_until(*sub, std::ref(seen), [&] { return !seen.seqs.empty() && seen.seqs.back() == n; }));
    const auto& st = sub->stats();
    CHECK(ascending(seen.seqs));
    CHECK(seen.seqs.size() <= (t.exact_queue ? 10u : n));
    CHECK(st.received + st.gaps == n);
    CHECK(st.dropped == st.gaps);
    CHECK(seen.lost_in_events == st.gaps);
  }
}

TEST_CASE("drop_newest keeps the oldest; a closing publisher's tail is counted") {
  for (const auto& t : transports()) {
    CAPTURE(std::string(t.name));
    rill::Node node;
    const auto ep = t.endpoint();
    Seen seen;
    auto sub = node.subscriber(options_for(ep, rill::Policy::drop_newest(10), seen));
    {
      auto pub = node.publisher({.endpoint = ep, .topic = "c/newest"});
      REQUIRE(attach(*pub, *sub));
      for (int i = 0; i < 300; ++i) REQUIRE(pub->publish_text("z"));
    }  // the publisher leaves: what never reached the handler is a tail gap
    REQUIRE(poll_until(*sub, std::ref(seen), [&] { return sub->stats().received + sub->stats().gaps == 300; }));
    CHECK(seen.seqs.front() == 1);
    CHECK(ascending(seen.seqs));
    CHECK(seen.seqs.size() <= (t.exact_queue ? 10u : 300u));
    if (t.exact_queue) CHECK(seen.seqs.back() == 10);
    CHECK(sub->stats().dropped == sub->stats().gaps);
    CHECK(seen.lost_in_events == sub->stats().gaps);
  }
}

TEST_CASE("buffer holds up to its byte limit, then raises one overflow event and drops oldest") {
  for (const auto& t : transports()) {
    CAPTURE(std::string(t.name));
    rill::Node node;
    const auto ep = t.endpoint();
    Seen seen;
    int overflows = 0;
    auto opts = options_for(ep, rill::Policy::buffer(64 * 1024), seen);
    opts.on_overflow = [&](const rill::SubscriberStats&) { ++overflows; };
    auto sub = node.subscriber(opts);
    auto pub = node.publisher({.endpoint = ep, .topic = "c/buffer"});
    REQUIRE(attach(*pub, *sub));
    const std::string payload(1000, 'b');
    // 40 messages fit in 64 KiB; 200 do not.
    for (int i = 0; i < 40; ++i) REQUIRE(pub->publish_text(payload));
    REQUIRE(poll_until(*sub, std::ref(seen), [&] { return seen.seqs.size() == 40; }));
    CHECK(overflows == 0);
    for (int i = 0; i < 200; ++i) REQUIRE(pub->publish_text(payload));
    REQUIRE(poll_until(*sub, std::ref(seen), [&] { return !seen.seqs.empty() && seen.seqs.back() == 240; }));
    CHECK(overflows == static_cast<int>(sub->stats().overflow_events));
    CHECK(sub->stats().overflow_events <= 1);
    CHECK(sub->stats().received + sub->stats().gaps == 240);
    CHECK(sub->stats().dropped == sub->stats().gaps);
    if (t.exact_queue) {
      CHECK(overflows == 1);
      CHECK(sub->stats().gaps > 0);
      CHECK(sub->stats().received <= 40 + 65);  // at most 64 KiB of the second burst
    }
  }
}

TEST_CASE("backpressure makes publish() wait, then time out, and loses nothing") {
  for (const auto& t : transports()) {
    CAPTURE(std::string(t.name));
    rill::Node node;
    const auto ep = t.endpoint();
    Seen seen;
    auto pub = node.publisher({.endpoint = ep, .topic = "c/bp", .publish_timeout = 100ms});
    auto sub = node.subscriber(options_for(ep, rill::Policy::backpressure(8), seen));
    REQUIRE(attach(*pub, *sub));
    int accepted = 0;
    rill::Result<void> r;
    while ((r = pub->publish_text("w"))) ++accepted;
    CHECK(r.error().code == rill::Errc::timed_out);
    CHECK(accepted >= 8);
    CHECK(accepted <= 9 + 8);  // the window, plus what a transport holds in flight
    CHECK(pub->stats().timeouts == 1);
    CHECK(pub->stats().blocked_ns >= 90'000'000);
    CHECK(pub->stats().last_blocker == sub->id());
    REQUIRE(poll_until(*sub, std::ref(seen), [&] { return seen.seqs.size() == static_cast<std::size_t>(accepted); }));
    REQUIRE(pub->publish_text("after"));  // room again
    REQUIRE(poll_until(*sub, std::ref(seen), [&] { return seen.seqs.size() == static_cast<std::size_t>(accepted) + 1; }));
    CHECK(sub->stats().gaps == 0);
    CHECK(ascending(seen.seqs));
  }
}

TEST_CASE("a 1 MiB message arrives byte for byte") {
  for (const auto& t : transports()) {
    CAPTURE(std::string(t.name));
    rill::Node node;
    const auto ep = t.endpoint();
    Seen seen;
    auto pub = node.publisher({.endpoint = ep, .topic = "c/large"});
    auto sub = node.subscriber(options_for(ep, rill::Policy::backpressure(4), seen));
    REQUIRE(attach(*pub, *sub));
    std::vector<std::byte> big(1 << 20);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::byte>(i * 31 + 7);
    for (int i = 0; i < 3; ++i) REQUIRE(pub->publish_bytes(big));
    int intact = 0;
    REQUIRE(poll_until(*sub, [&](const rill::MessageView& m) {
      if (m.payload().size() == big.size() && std::equal(big.begin(), big.end(), m.payload().begin())) ++intact;
    }, [&] { return intact == 3; }));
  }
}

TEST_CASE("a departed subscriber never holds up the publisher") {
  for (const auto& t : transports()) {
    CAPTURE(std::string(t.name));
    rill::Node node;
    const auto ep = t.endpoint();
    Seen seen;
    auto pub = node.publisher({.endpoint = ep, .topic = "c/leave", .publish_timeout = 2s});
    {
      auto sub = node.subscriber(options_for(ep, rill::Policy::backpressure(4), seen));
      REQUIRE(attach(*pub, *sub));
    }
    // Its window would be full after 4; with it gone, nothing blocks.
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 200; ++i) REQUIRE(pub->publish_text("v"));
    CHECK(std::chrono::steady_clock::now() - start < 2s);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (pub->service() > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    CHECK(pub->stats().subscribers == 0);
  }
}
