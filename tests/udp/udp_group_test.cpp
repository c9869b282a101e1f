// Consumer groups over reliable udp multicast, in one process over real loopback
// multicast: members (callback mode, each on its own thread) split the messages, each to
// exactly one member, while a fan-out subscriber beside them gets everything; a member
// joins midway; the same through 5% loss, reordering and duplication (the transport's
// seeded fault injection) in both directions; a durable group hands a departed member's
// unacknowledged messages to the survivors, and its position survives a publisher restart.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

using TempDir = rilltest::ShmTempDir;

// A group and port of its own per case and per process, so parallel runs never meet.
std::string udp_endpoint(const std::string& query) {
  return rilltest::udp_test_endpoint(250, 38000, query);
}

// handled[seq]: how many times some handler saw it; per_member: how many each took.
struct Tally {
  explicit Tally(std::size_t n, std::size_t members) : handled(n + 1), per_member(members) {}
  std::vector<std::atomic<unsigned>> handled;
  std::vector<std::atomic<std::uint64_t>> per_member;
  std::atomic<std::uint64_t> total{0};
  std::atomic<std::uint64_t> bad{0};
  auto handler(std::size_t member) {
    return [this, member](const rill::MessageView& m) {
      const auto s = m.sequence();
      if (s == 0 || s >= handled.size()) {
        ++bad;
        return;
      }
      handled[s].fetch_add(1);
      per_member[member].fetch_add(1);
      total.fetch_add(1);
    };
  }
};

bool wait_until(const std::function<bool()>& done, std::chrono::seconds limit) {
  const auto deadline = clock_type::now() + limit;
  while (!done()) {
    if (clock_type::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

rill::SubscriberOptions member(const std::string& ep) {
  rill::SubscriberOptions o{.endpoints = {ep}, .prefix = "jobs/", .policy = rill::Policy::backpressure(256)};
  o.group = "workers";
  return o;
}

// 3 members and a fan-out subscriber; a 4th member joins after `messages / 2`.
void split_run(const std::string& ep, std::uint64_t messages) {
  rill::Node node;
  auto pub = node.publisher({.endpoint = ep, .topic = "jobs/a", .publish_timeout = 10s});
  REQUIRE(pub);
  Tally members(messages, 4);
  Tally fan(messages, 1);
  std::vector<rill::Subscription> subs;
  for (std::size_t i = 0; i < 3; ++i) {
    auto s = node.subscribe(member(ep), members.handler(i));
    REQUIRE(s);
    subs.push_back(std::move(*s));
  }
  auto f = node.subscribe({.endpoints = {ep}, .prefix = "jobs/", .policy = rill::Policy::backpressure(1024)},
                          fan.handler(0));
  REQUIRE(f);
  REQUIRE(wait_until([&] { return pub->service() == 4; }, 10s));
  for (std::uint64_t i = 1; i <= messages; ++i) {
    REQUIRE(pub->publish_text("job " + std::to_string(i)));
    if (i == messages / 2) {
      auto s = node.subscribe(member(ep), members.handler(3));
      REQUIRE(s);
      subs.push_back(std::move(*s));
      REQUIRE(wait_until([&] { return pub->service() == 5; }, 10s));
    }
  }
  pub->flush();
  const bool all = wait_until(
      [&] {
        (void)pub->service();
        return members.total.load() >= messages && fan.total.load() >= messages;
      },
      60s);
  CHECK(all);
  // Nothing more trickles in: every message went to exactly one member.
  for (int i = 0; i < 50; ++i) {
    (void)pub->service();
    std::this_thread::sleep_for(1ms);
  }
  std::uint64_t once = 0;
  for (std::uint64_t s = 1; s <= messages; ++s) {
    once += members.handled[s].load() == 1;
    if (members.handled[s].load() != 1) CHECK_MESSAGE(members.handled[s].load() == 1, "seq " << s);
    if (fan.handled[s].load() != 1) CHECK_MESSAGE(fan.handled[s].load() == 1, "fan-out seq " << s);
  }
  CHECK(once == messages);
  CHECK(members.total.load() == messages);
  CHECK(fan.total.load() == messages);
  CHECK(members.bad.load() == 0);
  for (std::size_t i = 0; i < 4; ++i) CHECK_MESSAGE(members.per_member[i].load() > 0, "member " << i);
  CHECK(pub->stats().peer_drops == 0);
}

}  // namespace

TEST_CASE("udp group: 3 members split 10,000 messages, a 4th joins midway; fan-out beside them gets all") {
  split_run(udp_endpoint("linger_ms=2000"), 10'000);
}

TEST_CASE("udp group: through 5% loss, reordering and duplication both ways, each message to exactly one member") {
  split_run(udp_endpoint("linger_ms=2000&fault_data=0.05,0.02,0.02&fault_ctl=0.05,0.02,0.02&fault_seed=11"), 5'000);
}

TEST_CASE("udp group: a volatile group over best effort is refused when the member is created") {
  rill::Node node;
  auto s = node.subscriber(member(udp_endpoint("reliable=0")));
  REQUIRE_FALSE(s);
  CHECK(s.error().code == rill::Errc::invalid_argument);
  CHECK(s.error().message().find("reliable=1") != std::string::npos);
}

TEST_CASE(
    "udp durable group: a departed member's unacknowledged messages go to the survivors; the position survives "
    "a publisher restart") {
  constexpr std::uint64_t messages = 3000;
  constexpr std::uint64_t more = 200;
  TempDir dir;
  const auto log_dir = dir.str() + "/log";
  const auto ep = udp_endpoint("linger_ms=5000");
  const rill::PublisherOptions popts{.endpoint = ep,
                                     .topic = "jobs/a",
                                     .publish_timeout = 10s,
                                     .durability = rill::Durability::persistent(log_dir),
                                     .log = {.fsync = rill::FsyncPolicy::never()}};
  auto durable_member = [&](const std::string& state) {
    auto o = member(ep);
    o.durability = rill::Durability::persistent();
    o.durable_name = "w";
    o.from = rill::StartFrom::last_ack;
    o.state_dir = dir.str() + "/" + state;
    std::filesystem::create_directories(o.state_dir);
    return o;
  };
  Tally survivors(messages + more, 2);
  std::vector<std::uint64_t> quitter;  // what the member that leaves was given
  {
    rill::Node node;
    std::optional<rill::Publisher> pub(*node.publisher(popts));
    // The one that leaves never acknowledges (and keeps its own state, so the survivors'
    // ledger does not know what it handled): all it was given must reach the survivors.
    auto q = durable_member("quitter");
    q.auto_ack = false;
    std::optional<rill::Subscriber> leaver(*node.subscriber(q));
    std::vector<rill::Subscription> subs;
    for (std::size_t i = 0; i < 2; ++i) {
      auto s = node.subscribe(durable_member("shared"), survivors.handler(i));
      REQUIRE(s);
      subs.push_back(std::move(*s));
    }
    const auto poll_leaver = [&] {
      leaver->poll([&](const rill::MessageView& m) { quitter.push_back(m.sequence()); }, 64);
    };
    REQUIRE(wait_until(
        [&] {
          poll_leaver();
          return pub->service() == 3;
        },
        10s));
    // Its window (backpressure 256) fills: the publisher goes on with the others.
    for (std::uint64_t i = 1; i <= messages; ++i) {
      REQUIRE(pub->publish_text("job"));
      if (i % 16 == 0) poll_leaver();
    }
    pub->flush();
    REQUIRE(wait_until(
        [&] {
          (void)pub->service();
          poll_leaver();
          return survivors.total.load() + quitter.size() >= messages;
        },
        30s));
    REQUIRE(!quitter.empty());
    leaver.reset();  // LEAVE: what it had not acknowledged goes to the survivors
    REQUIRE(wait_until(
        [&] {
          (void)pub->service();
          return survivors.total.load() >= messages;
        },
        30s));
    for (std::uint64_t s = 1; s <= messages; ++s) {
      if (survivors.handled[s].load() != 1) CHECK_MESSAGE(survivors.handled[s].load() == 1, "seq " << s);
    }
    CHECK(survivors.total.load() == messages);
    CHECK(pub->stats().redelivered >= quitter.size());
    // Closing waits (linger) until the survivors acknowledged everything: the group's
    // position, "group:workers", reaches `messages` in the ack store.
    pub.reset();
  }
  // The publisher restarts from its log and publishes more with no member around; a
  // member with a fresh state joins: the group forms again from its stored position and
  // it is sent exactly the messages after it, read back from the log.
  rill::Node node;
  auto pub = node.publisher(popts);
  REQUIRE(pub);
  for (std::uint64_t i = 0; i < more; ++i) REQUIRE(pub->publish_text("later"));
  Tally late(messages + more, 1);
  auto s = node.subscribe(durable_member("late"), late.handler(0));
  REQUIRE(s);
  REQUIRE(wait_until(
      [&] {
        (void)pub->service();
        return late.total.load() >= more;
      },
      20s));
  for (int i = 0; i < 100; ++i) {
    (void)pub->service();
    std::this_thread::sleep_for(1ms);
  }
  CHECK(late.total.load() == more);
  for (std::uint64_t seq = messages + 1; seq <= messages + more; ++seq) CHECK(late.handled[seq].load() == 1);
  CHECK(late.bad.load() == 0);
}
