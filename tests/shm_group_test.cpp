// Consumer groups over shm, in one process: members of a group split the messages (each
// to exactly one member) while a fan-out subscription beside them gets all of them, a
// member joining midway takes a share, and a durable group hands what a departed member
// had not acknowledged to the others and keeps its position across a publisher restart.
// A member found dead by slot liveness is in shm_durable_test (it needs a hand-made slot);
// the multi-process case with SIGKILL is durable_e2e_shm_group.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <optional>
#include <set>
#include <vector>

#include "test_util.hpp"

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

using TempDir = rilltest::ShmTempDir;

const auto noop = [](const rill::MessageView&) {};

// Services the publisher and lets the subscribers greet it until it has `n` subscriptions.
bool wait_for_subscriptions(rill::Publisher& pub, std::vector<rill::Subscriber*> subs, std::size_t n) {
  const auto deadline = clock_type::now() + 10s;
  while (clock_type::now() < deadline) {
    if (pub.service() == n) return true;
    for (auto* s : subs) s->poll(noop, 0);
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

}  // namespace

TEST_CASE(
    "3 members split 10,000 messages, each to exactly one; a fan-out gets all; a member joining midway gets a share") {
  constexpr std::uint64_t messages = 10'000;
  constexpr std::uint64_t join_at = 5'000;
  rill::Node node;
  const auto ep = rilltest::fresh_shm_endpoint();
  auto pub = node.publisher({.endpoint = ep, .topic = "jobs/a", .publish_timeout = 10s});
  REQUIRE(pub);
  auto member = [&] {
    auto m = node.subscriber(
        {.endpoints = {ep}, .prefix = "jobs/", .policy = rill::Policy::backpressure(256), .group = "workers"});
    REQUIRE(m);
    return std::move(*m);
  };
  std::vector<rill::Subscriber> members;
  for (int i = 0; i < 3; ++i) members.push_back(member());
  auto fan = node.subscriber({.endpoints = {ep}, .prefix = "jobs/", .policy = rill::Policy::backpressure(1024)});
  REQUIRE(fan);
  REQUIRE(wait_for_subscriptions(*pub, {&members[0], &members[1], &members[2], &*fan}, 4));

  std::vector<int> handled(messages + 1, 0);
  std::vector<std::vector<std::uint64_t>> got(4);
  std::vector<std::uint64_t> fan_seqs;
  auto total = [&] { return got[0].size() + got[1].size() + got[2].size() + got[3].size(); };
  // Polls everyone until the members together, and the fan-out, have `n` messages.
  auto drive = [&](std::uint64_t n) {
    const auto end = clock_type::now() + 20s;
    while ((total() < n || fan_seqs.size() < n) && clock_type::now() < end) {
      (void)pub->service();
      for (std::size_t i = 0; i < members.size(); ++i) {
        members[i].poll([&](const rill::MessageView& m) { ++handled[m.sequence()], got[i].push_back(m.sequence()); },
                        256);
      }
      fan->poll([&](const rill::MessageView& m) { fan_seqs.push_back(m.sequence()); }, 1024);
    }
    return total() == n && fan_seqs.size() == n;
  };
  for (std::uint64_t i = 1; i <= messages; ++i) {
    REQUIRE(pub->publish_text("job"));
    if (i % 64 == 0) REQUIRE(drive(i));  // keep the windows moving (one thread drives all)
    if (i == join_at) {
      REQUIRE(drive(i));
      members.push_back(member());
      REQUIRE(wait_for_subscriptions(*pub, {&members[3]}, 5));
    }
  }
  REQUIRE(drive(messages));
  for (std::uint64_t s = 1; s <= messages; ++s) CHECK_MESSAGE(handled[s] == 1, "seq " << s);
  MESSAGE("members got " << got[0].size() << ", " << got[1].size() << ", " << got[2].size() << ", and " << got[3].size()
                         << " after joining at " << join_at);
  for (int i = 0; i < 3; ++i) CHECK(got[i].size() > messages / 5);
  // The late member takes its turn in the rotation from its join on, and nothing before it.
  CHECK(got[3].size() > (messages - join_at) / 5);
  CHECK(std::all_of(got[3].begin(), got[3].end(), [](std::uint64_t s) { return s > join_at; }));
  std::vector<std::uint64_t> want(messages);
  for (std::uint64_t s = 1; s <= messages; ++s) want[s - 1] = s;
  CHECK(fan_seqs == want);  // the fan-out subscription beside the group: every message, in order
  CHECK(pub->stats().peer_drops == 0);
  for (auto& m : members) CHECK(m.stats().gaps == 0);
}

TEST_CASE(
    "durable group: a departed member's unacknowledged messages go to the survivor; its position survives a restart") {
  rill::Node node;
  TempDir log_dir;
  const auto ep = rilltest::fresh_shm_endpoint();
  auto open_pub = [&] {
    return node.publisher({.endpoint = ep,
                           .topic = "jobs/a",
                           .durability = rill::Durability::persistent(log_dir.str()),
                           .log = {.fsync = rill::FsyncPolicy::never()}});
  };
  // Each member keeps its own state directory here, so that a message handed to a second
  // member reaches its handler again (sharing one, the group ledger would say it was done).
  std::vector<std::unique_ptr<TempDir>> states;
  auto member = [&](bool auto_ack) {
    states.push_back(std::make_unique<TempDir>());
    auto m = node.subscriber({.endpoints = {ep},
                              .prefix = "jobs/",
                              .policy = rill::Policy::backpressure(1024),
                              .durability = rill::Durability::persistent(),
                              .durable_name = "w",
                              .state_dir = states.back()->str(),
                              .auto_ack = auto_ack,
                              .group = "g"});
    REQUIRE(m);
    return std::optional<rill::Subscriber>(std::move(*m));
  };
  auto pump = [&](rill::Publisher& pub, std::vector<std::optional<rill::Subscriber>*> subs,
                  std::vector<std::vector<std::uint64_t>*> out, const std::function<bool()>& done) {
    const auto end = clock_type::now() + 20s;
    while (!done() && clock_type::now() < end) {
      (void)pub.service();
      for (std::size_t i = 0; i < subs.size(); ++i) {
        (*subs[i])->poll([&](const rill::MessageView& m) { out[i]->push_back(m.sequence()); }, 256);
      }
    }
    return done();
  };

  std::vector<std::uint64_t> a_got, b_got, c_got, d_got;
  {
    auto pub = open_pub();
    REQUIRE(pub);
    auto a = member(false);  // handles, never acknowledges
    auto b = member(true);
    REQUIRE(wait_for_subscriptions(*pub, {&*a, &*b}, 2));
    for (int i = 1; i <= 2000; ++i) {
      REQUIRE(pub->publish_text("job"));
      if (i % 100 == 0) {
        REQUIRE(pump(*pub, {&a, &b}, {&a_got, &b_got}, [&] { return a_got.size() + b_got.size() == std::size_t(i); }));
      }
    }
    REQUIRE(a_got.size() > 500);
    REQUIRE(b_got.size() > 500);
    const auto b_before = b_got.size();
    a.reset();  // leaves holding every message it was given, unacknowledged
    REQUIRE(pump(*pub, {&b}, {&b_got}, [&] { return b_got.size() == b_before + a_got.size(); }));
    // The survivor was given exactly the departed member's messages again, read from the log.
    std::vector<std::uint64_t> again(b_got.begin() + static_cast<std::ptrdiff_t>(b_before), b_got.end());
    std::sort(again.begin(), again.end());
    CHECK(again == a_got);
    CHECK(pub->stats().redelivered == a_got.size());
    std::set<std::uint64_t> all(b_got.begin(), b_got.end());
    CHECK(all.size() == 2000);
    CHECK(*all.begin() == 1);
    CHECK(*all.rbegin() == 2000);
    // Its acks reach the publisher: the group's position becomes 2000.
    REQUIRE(pump(*pub, {&b}, {&b_got}, [&] { return b->stats().acked == b_got.back(); }));
    b.reset();
    // A member that takes 2001..2100 and never acknowledges them, then the publisher stops.
    auto c = member(false);
    REQUIRE(wait_for_subscriptions(*pub, {&*c}, 1));
    for (int i = 0; i < 100; ++i) REQUIRE(pub->publish_text("job"));
    REQUIRE(pump(*pub, {&c}, {&c_got}, [&] { return c_got.size() == 100; }));
    CHECK(c_got.front() == 2001);
    CHECK(c_got.back() == 2100);
  }
  // Restarted: the group resumes after its stored position, 2000. What the last member
  // had not acknowledged (2001..2100) comes again; nothing the group acknowledged does.
  auto pub = open_pub();
  REQUIRE(pub);
  auto d = member(true);
  REQUIRE(pump(*pub, {&d}, {&d_got}, [&] { return d_got.size() >= 100; }));
  for (int i = 0; i < 10; ++i) REQUIRE(pub->publish_text("job"));
  REQUIRE(pump(*pub, {&d}, {&d_got}, [&] { return d_got.size() >= 110; }));
  std::sort(d_got.begin(), d_got.end());
  std::vector<std::uint64_t> want;
  for (std::uint64_t s = 2001; s <= 2110; ++s) want.push_back(s);
  CHECK(d_got == want);
}
