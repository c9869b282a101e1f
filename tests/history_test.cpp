// Publisher-side durability over tcp loopback, in one process: transient_local late
// joiners at full publish rate (the seam), persistent publishers that continue their
// log after a restart and serve it to durable subscriptions, and refused requests.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <thread>
#include <vector>

#include "policies/durability/sequence_mark.hpp"
#include "rill/log.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using rilltest::fresh_endpoint;

// Log directories on tmpfs: fsync is cheap there, and kill -9 semantics are the same.
using TempDir = rilltest::ShmTempDir;

namespace {

// Collects sequences and checks they run without a gap or a repeat.
struct Seqs {
  std::vector<std::uint64_t> seen;
  std::uint64_t publisher = 0;
  void operator()(const rill::MessageView& m) {
    seen.push_back(m.sequence());
    publisher = m.publisher_id();
  }
  [[nodiscard]] bool contiguous() const {
    for (std::size_t i = 1; i < seen.size(); ++i) {
      if (seen[i] != seen[i - 1] + 1) return false;
    }
    return true;
  }
};

bool drive_until(rill::Publisher& pub, rill::Subscriber& sub, Seqs& seqs, std::uint64_t last) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    pub.service();
    sub.poll([&](const rill::MessageView& m) { seqs(m); }, 4096);
    if (!seqs.seen.empty() && seqs.seen.back() >= last) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("transient_local: a late joiner at full publish rate gets exactly the last N, then live") {
  constexpr std::size_t history = 1000;
  constexpr std::uint64_t total = 200'000;
  rill::Node node;
  const auto ep = fresh_endpoint();
  auto pub = node.publisher({.endpoint = ep,
                             .topic = "md/t",
                             .publish_timeout = 10s,
                             .durability = rill::Durability::transient_local(history)});
  REQUIRE(pub);
  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> join_before{0};  // next_sequence() before the publish() that took the join
  std::atomic<bool> publish_failed{false};
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    for (std::uint64_t i = 0; i < total && !stop.load(); ++i) {
      const auto before = pub->next_sequence();
      const bool had = pub->stats().joined > 0;
      if (!pub->publish_text("tick")) {
        publish_failed = true;  // (doctest's REQUIRE must not throw on this thread)
        published = total;
        break;
      }
      if (!had && pub->stats().joined > 0) join_before = before;
      published = i + 1;
    }
    // Serve until the subscriber has everything (it stops us; also when it gave up
    // waiting while we were still publishing).
    while (!stop.load()) {
      pub->service();
      std::this_thread::sleep_for(1ms);
    }
  });
  while (published.load() < 20'000) std::this_thread::sleep_for(1ms);
  Seqs seqs;
  {
    auto sub = node.subscriber({.endpoints = {ep},
                                .prefix = "md/",
                                .policy = rill::Policy::backpressure(1024),
                                .durability = rill::Durability::transient_local(0)});
    REQUIRE(sub);
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while ((seqs.seen.empty() || seqs.seen.back() < total) && std::chrono::steady_clock::now() < deadline) {
      sub->wait_poll([&](const rill::MessageView& m) { seqs(m); }, 4096, 5ms);
    }
    CHECK(sub->stats().gaps == 0);
    CHECK(sub->stats().duplicates == 0);
  }
  stop = true;
  publisher.join();
  REQUIRE(!publish_failed);
  REQUIRE(!seqs.seen.empty());
  CHECK(seqs.seen.back() == total);
  CHECK(seqs.contiguous());
  // The join was taken inside one publish(): before that message was kept (history ends
  // just before it) or after (it is the last history message). Either way: the last N.
  const auto k = join_before.load();
  REQUIRE(k > history);
  const auto first = seqs.seen.front();
  CHECK((first == k - history || first == k + 1 - history));
  CHECK(pub->stats().replayed >= history - 1);
}

TEST_CASE("transient_local: a subscription may ask for fewer than the publisher keeps") {
  rill::Node node;
  const auto ep = fresh_endpoint();
  auto pub = node.publisher({.endpoint = ep, .topic = "t", .durability = rill::Durability::transient_local(100)});
  REQUIRE(pub);
  for (int i = 0; i < 500; ++i) REQUIRE(pub->publish_text("x"));
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = "t", .durability = rill::Durability::transient_local(10)});
  REQUIRE(sub);
  Seqs seqs;
  REQUIRE(drive_until(*pub, *sub, seqs, 500));
  CHECK(seqs.seen.front() == 491);
  CHECK(seqs.seen.size() == 10);
  REQUIRE(pub->publish_text("live"));
  REQUIRE(drive_until(*pub, *sub, seqs, 501));
  CHECK(seqs.contiguous());
}

TEST_CASE("an idle durable publisher serves late joiners from its helper thread; without one nothing moves") {
  TempDir dir;
  rill::Node node;
  const auto ep = fresh_endpoint();
  auto run = [&](std::chrono::milliseconds idle_service) {
    const std::uint64_t first = 1;
    auto pub = node.publisher({.endpoint = ep,
                               .topic = "t",
                               .durability = rill::Durability::persistent(dir.str() + "/log"),
                               .idle_service = idle_service});
    REQUIRE(pub);
    for (int i = 0; i < 3000; ++i) REQUIRE(pub->publish_text("x"));
    // From here this thread never touches the publisher until it checks its stats. The
    // history is paced by the subscription's credit, so it takes many service() rounds.
    auto sub = node.subscriber({.endpoints = {ep},
                                .prefix = "t",
                                .policy = rill::Policy::backpressure(64),
                                .durability = rill::Durability::persistent(""),
                                .durable_name = "late",
                                .from = rill::StartFrom::start,
                                .state_dir = dir.str()});
    REQUIRE(sub);
    Seqs seqs;
    const auto deadline = std::chrono::steady_clock::now() + (idle_service.count() > 0 ? 20s : 500ms);
    while (std::chrono::steady_clock::now() < deadline && seqs.seen.size() < 3000 + first - 1) {
      sub->wait_poll([&](const rill::MessageView& m) { seqs(m); }, 4096, 10ms);
    }
    if (idle_service.count() > 0) {
      REQUIRE(seqs.seen.size() == 3000 + first - 1);
      CHECK(seqs.seen.front() == 1);
      CHECK(seqs.contiguous());
      CHECK(pub->stats().replayed >= 3000);
    } else {
      CHECK(seqs.seen.empty());  // nobody calls service(): the join is never even answered
    }
  };
  SUBCASE("with the helper (the default)") {
    run(rill::PublisherOptions{}.idle_service);
  }
  SUBCASE("idle_service = 0") {
    run(0ms);
  }
}

TEST_CASE("persistent: the id and sequence continue from the log; durable subscriptions replay it") {
  TempDir dir;
  rill::Node node;
  const auto ep = fresh_endpoint();
  const rill::PublisherOptions opts{.endpoint = ep,
                                    .topic = "orders/eu",
                                    .durability = rill::Durability::persistent(dir.str()),
                                    .log = {.fsync = rill::FsyncPolicy::never()}};
  std::uint64_t id = 0;
  {
    auto pub = node.publisher(opts);
    REQUIRE(pub);
    CHECK(pub->durability() == rill::DurabilityKind::persistent);
    REQUIRE(pub->log() != nullptr);
    id = pub->id();
    for (int i = 0; i < 3000; ++i) REQUIRE(pub->publish_text("m" + std::to_string(i)));
  }
  auto pub = node.publisher(opts);
  REQUIRE_MESSAGE(pub, (pub ? std::string() : pub.error().message()));
  CHECK(pub->id() == id);
  CHECK(pub->next_sequence() == 3001);

  SUBCASE("from start: all of it, then live, no gap, no duplicate") {
    auto sub = node.subscriber({.endpoints = {ep},
                                .prefix = "orders/",
                                .policy = rill::Policy::backpressure(256),
                                .durability = rill::Durability::persistent(),
                                .durable_name = "audit",
                                .from = rill::StartFrom::start,
                                .state_dir = dir.str()});
    REQUIRE(sub);
    Seqs seqs;
    REQUIRE(drive_until(*pub, *sub, seqs, 3000));
    for (int i = 0; i < 100; ++i) REQUIRE(pub->publish_text("live"));
    REQUIRE(drive_until(*pub, *sub, seqs, 3100));
    CHECK(seqs.seen.front() == 1);
    CHECK(seqs.seen.size() == 3100);
    CHECK(seqs.contiguous());
    CHECK(seqs.publisher == id);
    CHECK(sub->stats().gaps == 0);
  }
  SUBCASE("from end: only what is published after it joined") {
    auto sub = node.subscriber({.endpoints = {ep},
                                .prefix = "orders/",
                                .durability = rill::Durability::persistent(),
                                .durable_name = "tail",
                                .from = rill::StartFrom::end,
                                .state_dir = dir.str()});
    REQUIRE(sub);
    REQUIRE(rilltest::attach(*pub, *sub));
    REQUIRE(pub->publish_text("after"));
    Seqs seqs;
    REQUIRE(drive_until(*pub, *sub, seqs, 3001));
    CHECK(seqs.seen == std::vector<std::uint64_t>{3001});
  }
  SUBCASE("a volatile subscription of a persistent publisher sees only live messages") {
    auto sub = node.subscriber({.endpoints = {ep}, .prefix = "orders/"});
    REQUIRE(sub);
    REQUIRE(rilltest::attach(*pub, *sub));
    REQUIRE(pub->publish_text("after"));
    Seqs seqs;
    REQUIRE(drive_until(*pub, *sub, seqs, 3001));
    CHECK(seqs.seen == std::vector<std::uint64_t>{3001});
  }
}

TEST_CASE("persistent, fsync every: numbers handed out but never logged are lost, never handed out again") {
  TempDir dir;
  rill::Node node;
  const auto ep = fresh_endpoint();
  const rill::PublisherOptions opts{.endpoint = ep,
                                    .topic = "orders/eu",
                                    .durability = rill::Durability::persistent(dir.str()),
                                    .log = {.fsync = rill::FsyncPolicy::every(10ms)}};
  std::uint64_t id = 0;
  {
    auto pub = node.publisher(opts);
    REQUIRE(pub);
    id = pub->id();
    for (int i = 0; i < 100; ++i) REQUIRE(pub->publish_text("m"));
  }
  {
    // What a publisher killed after sending 101..150, before the log writer wrote them,
    // leaves behind: a mark past the log's end.
    auto mark = rill::detail::SequenceMark::open(dir.path());
    REQUIRE(mark);
    CHECK(mark->last_handed_out() == 100);
    REQUIRE(mark->hand_out(150, true));
  }
  auto pub = node.publisher(opts);
  REQUIRE(pub);
  CHECK(pub->id() == id);
  CHECK(pub->next_sequence() == 151);  // 101..150 are never given to other messages
  auto sub = node.subscriber({.endpoints = {ep},
                              .prefix = "orders/",
                              .policy = rill::Policy::backpressure(256),
                              .durability = rill::Durability::persistent(),
                              .durable_name = "audit",
                              .from = rill::StartFrom::start,
                              .state_dir = dir.str()});
  REQUIRE(sub);
  Seqs seqs;
  REQUIRE(drive_until(*pub, *sub, seqs, 100));
  REQUIRE(pub->publish_text("after"));
  REQUIRE(drive_until(*pub, *sub, seqs, 151));
  CHECK(seqs.seen.size() == 101);
  CHECK(seqs.seen.back() == 151);
  CHECK(sub->stats().gaps == 50);  // said, not hidden
  // The log holds them as lost (empty) records, which readers skip and `rill log inspect` names.
  REQUIRE(pub->log() != nullptr);
  CHECK(pub->log()->next_sequence() == 152);
}

TEST_CASE("persistent, fsync every: a publisher killed at full rate never reuses a sequence it handed out") {
  TempDir dir;
  const auto ep = fresh_endpoint();
  const rill::PublisherOptions opts{.endpoint = ep,
                                    .topic = "orders/eu",
                                    .durability = rill::Durability::persistent(dir.str()),
                                    .log = {.fsync = rill::FsyncPolicy::every(1000ms)}};
  constexpr std::uint64_t sent = 20'000;
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    rill::Node node;
    auto pub = node.publisher(opts);
    if (!pub) ::_exit(2);
    for (std::uint64_t i = 0; i < sent; ++i) {
      if (!pub->publish_text("m")) ::_exit(3);
    }
    ::raise(SIGKILL);  // whatever the log writer had not written yet is lost with the process
    ::_exit(4);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  rill::Node node;
  auto pub = node.publisher(opts);
  REQUIRE(pub);
  CHECK(pub->next_sequence() == sent + 1);
  auto log = rill::Log::open(dir.path(), {.read_only = true});
  REQUIRE(log);
  CHECK(log->next_sequence() == sent + 1);
}

TEST_CASE("asking for more durability than offered is refused, never downgraded") {
  TempDir dir;
  rill::Node node;
  const auto ep = fresh_endpoint();
  auto pub = node.publisher({.endpoint = ep, .topic = "t", .durability = rill::Durability::transient_local(10)});
  REQUIRE(pub);
  std::vector<rill::IncompatibleEvent> events;
  auto sub = node.subscriber({.endpoints = {ep},
                              .prefix = "t",
                              .durability = rill::Durability::persistent(),
                              .durable_name = "x",
                              .state_dir = dir.str(),
                              .on_incompatible = [&](const rill::IncompatibleEvent& e) { events.push_back(e); }});
  REQUIRE(sub);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (events.empty() && std::chrono::steady_clock::now() < deadline) {
    pub->service();
    sub->wait_poll([](const rill::MessageView&) {}, 16, 2ms);
  }
  REQUIRE(events.size() == 1);
  CHECK(events[0].publisher_id == pub->id());
  CHECK(events[0].offered == rill::DurabilityKind::transient_local);
  CHECK(events[0].requested == rill::DurabilityKind::persistent);
  CHECK(sub->stats().incompatible == 1);
  CHECK(pub->stats().incompatible == 1);
  CHECK(pub->stats().subscribers == 0);
  REQUIRE(pub->publish_text("not for it"));
  for (int i = 0; i < 20; ++i) pub->service();
  CHECK(sub->poll([](const rill::MessageView&) {}, 16) == 0);
}

TEST_CASE("durability options are checked") {
  rill::Node node;
  CHECK(node.publisher({.endpoint = fresh_endpoint(), .topic = "t", .durability = rill::Durability::transient_local(0)})
            .error()
            .code == rill::Errc::invalid_argument);
  CHECK(node.publisher({.endpoint = fresh_endpoint(), .topic = "t", .durability = rill::Durability::persistent()})
            .error()
            .code == rill::Errc::invalid_argument);
  CHECK(rill::parse_durability("transient-local:7")->history == 7);
  CHECK(rill::parse_durability("persistent:/x")->dir == "/x");
  CHECK(!rill::parse_durability("transient-local:0"));
  CHECK(!rill::parse_durability("sometimes"));
  CHECK(rill::to_string(*rill::parse_durability("transient-local:7")) == "transient-local:7");
  CHECK(*rill::parse_start_from("last-ack") == rill::StartFrom::last_ack);
  CHECK(!rill::parse_start_from("middle"));
}

TEST_CASE("a consumer group splits the messages: each to exactly one member, also as members leave") {
  rill::Node node;
  const auto ep = fresh_endpoint();
  auto pub = node.publisher({.endpoint = ep, .topic = "jobs/a", .publish_timeout = 10s});
  REQUIRE(pub);
  std::vector<rill::Subscriber> members;
  for (int i = 0; i < 3; ++i) {
    auto m = node.subscriber(
        {.endpoints = {ep}, .prefix = "jobs/", .policy = rill::Policy::backpressure(64), .group = "workers"});
    REQUIRE(m);
    members.push_back(std::move(*m));
  }
  auto fan = node.subscriber({.endpoints = {ep}, .prefix = "jobs/"});  // fan-out beside the group
  REQUIRE(fan);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (pub->service() < 4 && std::chrono::steady_clock::now() < deadline) {
    for (auto& m : members) m.poll([](const rill::MessageView&) {}, 0);
    fan->poll([](const rill::MessageView&) {}, 0);
  }
  REQUIRE(pub->stats().subscribers == 4);
  std::vector<int> handled(3001, 0);
  std::vector<std::uint64_t> per_member(3, 0);
  std::uint64_t fan_got = 0;
  auto drive = [&](std::uint64_t until_total) {
    const auto end = std::chrono::steady_clock::now() + 20s;
    auto total = [&] { return per_member[0] + per_member[1] + per_member[2]; };
    while (total() < until_total && std::chrono::steady_clock::now() < end) {
      pub->service();
      for (std::size_t i = 0; i < members.size(); ++i) {
        members[i].poll([&](const rill::MessageView& m) { ++handled[m.sequence()], ++per_member[i]; }, 256);
      }
      fan->poll([&](const rill::MessageView&) { ++fan_got; }, 256);
    }
    return total() == until_total;
  };
  for (int i = 0; i < 1500; ++i) {
    REQUIRE(pub->publish_text("job"));
    if (i % 32 == 0) REQUIRE(drive(static_cast<std::uint64_t>(i) + 1));  // keep the windows moving
  }
  REQUIRE(drive(1500));
  CHECK(per_member[0] > 0);
  CHECK(per_member[1] > 0);
  CHECK(per_member[2] > 0);
  // One member leaves (UNSUBSCRIBE): the other two take everything from now on.
  members.erase(members.begin() + 2);
  const auto gone = per_member[2];
  // A volatile group loses what was in flight to a member that left; publish on once the
  // publisher has seen it go, so every message has a member to reach.
  const auto left_by = std::chrono::steady_clock::now() + 10s;
  while (pub->service() > 3 && std::chrono::steady_clock::now() < left_by) std::this_thread::sleep_for(1ms);
  REQUIRE(pub->stats().subscribers == 3);
  for (int i = 0; i < 1500; ++i) {
    REQUIRE(pub->publish_text("job"));
    if (i % 32 == 0) REQUIRE(drive(1500 + static_cast<std::uint64_t>(i) + 1));
  }
  REQUIRE(drive(3000));
  CHECK(per_member[2] == gone);
  for (std::uint64_t s = 1; s <= 3000; ++s) CHECK_MESSAGE(handled[s] == 1, "seq " << s);
  const auto fan_deadline = std::chrono::steady_clock::now() + 10s;
  while (fan_got < 3000 && std::chrono::steady_clock::now() < fan_deadline) {
    fan->wait_poll([&](const rill::MessageView&) { ++fan_got; }, 256, 2ms);
  }
  CHECK(fan_got == 3000);  // fan-out subscriptions beside a group still get every message
}
