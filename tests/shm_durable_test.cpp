// Durability over shm, the parts tcp does not have: history is paced by the slot's ring
// (a drop policy never drops it), the request a subscriber writes into its slot and the
// ack word are untrusted (a hand-written slot stands in for a scribbling process), a
// closing publisher first sends catching-up subscriptions their history, a slot's group
// name is untrusted, and a durable group member found dead by slot liveness hands what it
// had not acknowledged to the others (shm_group_test has the rest of groups). The shared
// durability cases run over shm in shm_history_test and shm_durable_sub_test
// (history_test.cpp and durable_sub_test.cpp rebuilt).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <unistd.h>

#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <cstring>
#include <thread>
#include <vector>

#include "test_util.hpp"
#include "transport/shm/shm_directory.hpp"

using namespace std::chrono_literals;
namespace shm = rill::detail::shm;
using clock_type = std::chrono::steady_clock;

namespace {

using TempDir = rilltest::ShmTempDir;

std::string name_of(const std::string& endpoint) {
  return endpoint.substr(6, endpoint.find('?') - 6);
}

struct Seqs {
  std::vector<std::uint64_t> seen;
  void operator()(const rill::MessageView& m) { seen.push_back(m.sequence()); }
  [[nodiscard]] bool contiguous_from(std::uint64_t first) const {
    for (std::size_t i = 0; i < seen.size(); ++i) {
      if (seen[i] != first + i) return false;
    }
    return true;
  }
};

/// A slot claimed and filled in by hand, as a (possibly misbehaving) subscriber process would.
class HandSlot {
 public:
  explicit HandSlot(const std::string& endpoint) {
    shm::ShmOptions o;
    o.name = name_of(endpoint);
    auto m = shm::open_live_channel(o);  // the endpoint's one publisher
    REQUIRE_MESSAGE(m, m.error().message());
    m_map = *m;
  }
  ~HandSlot() { m_map->release(); }
  HandSlot(const HandSlot&) = delete;
  HandSlot& operator=(const HandSlot&) = delete;

  /// Claims a free slot with this durability request and makes it active.
  shm::Slot& claim(std::uint32_t durability, std::uint32_t from, std::string_view name, std::string_view group = {},
                   std::uint32_t group_bytes = 0) {
    const auto pid = static_cast<std::uint32_t>(::getpid());
    for (m_index = 0; m_index < m_map->slot_count(); ++m_index) {
      std::uint64_t expected = 0;
      if (m_map->slot(m_index).owner.compare_exchange_strong(expected, shm::make_owner(pid, shm::SlotState::claiming)))
        break;
    }
    REQUIRE(m_index < m_map->slot_count());
    auto& s = m_map->slot(m_index);
    s.owner_start = shm::process_start_time(::getpid()).value_or(0);
    s.subscription_id = 0x5107;
    s.policy_kind = static_cast<std::uint32_t>(rill::PolicyKind::drop_oldest);
    s.policy_capacity = 1024;
    s.tail.store(0);
    s.joined.store(0);
    s.rejected.store(0);
    s.lost.store(0);
    s.acked.store(0);
    s.durability = durability;
    s.start_from = from;
    s.history = 0;
    std::memset(s.durable_name, 0, sizeof s.durable_name);
    std::memcpy(s.durable_name, name.data(), std::min(name.size(), sizeof s.durable_name));
    s.durable_name_bytes = static_cast<std::uint32_t>(name.size());
    std::memset(s.group, 0, sizeof s.group);
    if (!group.empty()) std::memcpy(s.group, group.data(), std::min(group.size(), sizeof s.group));
    s.group_bytes = group_bytes != 0 ? group_bytes : static_cast<std::uint32_t>(group.size());
    for (std::uint32_t i = 0; i < m_map->ring_capacity(); ++i) m_map->ring(m_index)[i].store(0);
    s.owner.store(shm::make_owner(pid, shm::SlotState::active));
    m_map->header().roster.fetch_add(1);
    return s;
  }
  /// Leaves the slot as a subscriber detaching does.
  void leave() {
    m_map->slot(m_index).owner.store(shm::make_owner(static_cast<std::uint32_t>(::getpid()), shm::SlotState::leaving));
    m_map->header().roster.fetch_add(1);
  }
  [[nodiscard]] shm::Slot& slot() const { return m_map->slot(m_index); }
  /// The sequences the publisher pushed into this slot's ring, in push order (nobody takes them).
  [[nodiscard]] std::vector<std::uint64_t> pushed() const {
    std::vector<std::uint64_t> seqs;
    for (std::uint64_t pos = 0; pos < m_map->ring_capacity(); ++pos) {
      const auto e = m_map->ring(m_index)[pos].load();
      if (!shm::entry_is(e, pos)) break;
      seqs.push_back(m_map->chunk(shm::entry_chunk(e))->sequence);
    }
    return seqs;
  }

 private:
  shm::Mapping* m_map = nullptr;
  std::uint32_t m_index = 0;
};

}  // namespace

TEST_CASE("history is paced by a small ring: a late joiner of any policy gets all of it, then live, nothing dropped") {
  for (const auto policy : {rill::Policy::drop_oldest(8), rill::Policy::drop_newest(8), rill::Policy::buffer(4096),
                            rill::Policy::backpressure(8)}) {
    CAPTURE(rill::to_string(policy));
    rill::Node node;
    const auto ep = rilltest::fresh_shm_endpoint("ring=16");
    auto pub = node.publisher({.endpoint = ep, .topic = "h/t", .durability = rill::Durability::transient_local(500)});
    REQUIRE(pub);
    for (int i = 0; i < 700; ++i) REQUIRE(pub->publish_text("old " + std::to_string(i)));
    auto sub = node.subscriber(
        {.endpoints = {ep}, .prefix = "h/", .policy = policy, .durability = rill::Durability::transient_local(0)});
    REQUIRE(sub);
    Seqs seqs;
    // The publisher keeps publishing while the subscriber catches up, four messages per
    // poll: the ring (8 deep, or 4 KiB) could not hold the history and the live ones at once.
    const auto deadline = clock_type::now() + 20s;
    std::uint64_t last = 700;
    while ((seqs.seen.empty() || seqs.seen.back() < 1000) && clock_type::now() < deadline) {
      if (last < 1000) {
        REQUIRE(pub->publish_text("live"));
        ++last;
      }
      (void)pub->service();
      sub->poll([&](const rill::MessageView& m) { seqs(m); }, 4);
    }
    REQUIRE(!seqs.seen.empty());
    CHECK(seqs.seen.front() == 201);  // the last 500 of the 700 published before it joined
    CHECK(seqs.seen.back() == 1000);
    CHECK(seqs.contiguous_from(201));
    CHECK(sub->stats().dropped == 0);
    CHECK(sub->stats().gaps == 0);
    CHECK(pub->stats().replayed >= 500);
    CHECK(pub->stats().peer_drops == 0);
  }
}

TEST_CASE("a closing publisher first sends a catching-up subscription the rest of its history") {
  rill::Node node;
  const auto ep = rilltest::fresh_shm_endpoint("ring=16");
  auto pub = std::make_optional(
      *node.publisher({.endpoint = ep, .topic = "c/t", .durability = rill::Durability::transient_local(2000)}));
  for (int i = 0; i < 2000; ++i) REQUIRE(pub->publish_text("m"));
  auto sub = node.subscriber({.endpoints = {ep},
                              .prefix = "c/",
                              .policy = rill::Policy::backpressure(16),
                              .durability = rill::Durability::transient_local(0)});
  REQUIRE(sub);
  REQUIRE(rilltest::attach(*pub, *sub));
  std::atomic<bool> done{false};
  Seqs seqs;
  std::thread reader([&] {
    const auto deadline = clock_type::now() + 20s;
    while (!done && clock_type::now() < deadline) {
      sub->wait_poll([&](const rill::MessageView& m) { seqs(m); }, 64, 1ms);
      if (!seqs.seen.empty() && seqs.seen.back() == 2000) done = true;
    }
  });
  pub.reset();  // close(): at most 16 were in the ring; the rest is sent while the reader reads
  reader.join();
  REQUIRE(seqs.seen.size() == 2000);
  CHECK(seqs.contiguous_from(1));
}

TEST_CASE("a slot's durability request is untrusted: malformed ones are refused, the slot freed") {
  rill::Node node;
  TempDir dir;
  const auto ep = rilltest::fresh_shm_endpoint();
  auto pub = node.publisher({.endpoint = ep,
                             .topic = "r/t",
                             .durability = rill::Durability::persistent(dir.str()),
                             .log = {.fsync = rill::FsyncPolicy::never()}});
  REQUIRE(pub);
  HandSlot hand(ep);
  struct Case {
    std::uint32_t durability, from;
    std::string name;
  };
  for (const auto& c : {Case{7, 0, "x"}, Case{2, 9, "x"}, Case{2, 0, "../etc"}, Case{2, 0, ".hidden"},
                        Case{2, 0, std::string(129, 'a')}}) {
    CAPTURE(c.durability);
    CAPTURE(c.from);
    CAPTURE(c.name);
    auto& s = hand.claim(c.durability, c.from, c.name);
    (void)pub->service();
    CHECK(s.rejected.load() == static_cast<std::uint32_t>(shm::RejectReason::malformed));
    CHECK(s.joined.load() == 0);
    CHECK(pub->stats().subscribers == 0);
    hand.leave();
    (void)pub->service();
    CHECK(s.owner.load() == 0);  // freed at once: it was never given anything
  }
  CHECK(pub->stats().incompatible == 1);  // one subscription id, counted once
  // A good request on the same publisher is served.
  auto& s = hand.claim(2, static_cast<std::uint32_t>(rill::StartFrom::start), "good");
  (void)pub->service();
  CHECK(s.rejected.load() == 0);
  CHECK(s.joined.load() == 1);
  CHECK(pub->stats().subscribers == 1);
}

TEST_CASE("acks: stored under the durable name; acks beyond what was sent, or backwards, are ignored") {
  rill::Node node;
  TempDir dir;
  const auto ep = rilltest::fresh_shm_endpoint();
  auto pub = node.publisher({.endpoint = ep,
                             .topic = "a/t",
                             .durability = rill::Durability::persistent(dir.str()),
                             .log = {.fsync = rill::FsyncPolicy::never()}});
  REQUIRE(pub);
  for (int i = 0; i < 100; ++i) REQUIRE(pub->publish_text("m"));
  HandSlot hand(ep);
  const auto last_ack = static_cast<std::uint32_t>(rill::StartFrom::last_ack);
  auto& s = hand.claim(2, last_ack, "forged");
  (void)pub->service();
  REQUIRE(s.joined.load() == 1);  // no position stored yet: from the start
  s.acked.store(5000);            // never sent
  (void)pub->service();
  CHECK(pub->stats().bad_control == 1);
  CHECK(pub->stats().acks == 0);
  s.acked.store(60);
  REQUIRE(pub->publish_text("m"));  // a publish takes acks too
  CHECK(pub->stats().acks == 1);
  s.acked.store(30);  // backwards
  (void)pub->service();
  CHECK(pub->stats().acks == 1);
  hand.leave();
  (void)pub->service();
  CHECK(pub->stats().subscribers == 0);
  // The same name again resumes after the stored 60.
  auto& again = hand.claim(2, last_ack, "forged");
  (void)pub->service();
  CHECK(again.joined.load() == 61);
}

TEST_CASE("a volatile shm publisher refuses a durable request: one event, nothing delivered") {
  rill::Node node;
  const auto ep = rilltest::fresh_shm_endpoint();
  auto pub = node.publisher({.endpoint = ep, .topic = "v/t"});
  REQUIRE(pub);
  std::vector<rill::IncompatibleEvent> events;
  auto sub = node.subscriber({.endpoints = {ep},
                              .prefix = "v/",
                              .durability = rill::Durability::transient_local(0),
                              .on_incompatible = [&](const rill::IncompatibleEvent& e) { events.push_back(e); }});
  REQUIRE(sub);
  int delivered = 0;
  const auto deadline = clock_type::now() + 10s;
  while (events.empty() && clock_type::now() < deadline) {
    (void)pub->service();
    sub->wait_poll([&](const rill::MessageView&) { ++delivered; }, 16, 2ms);
  }
  REQUIRE(events.size() == 1);
  CHECK(events[0].publisher_id == pub->id());
  CHECK(events[0].offered == rill::DurabilityKind::volatile_);
  CHECK(events[0].requested == rill::DurabilityKind::transient_local);
  CHECK(pub->stats().incompatible == 1);
  CHECK(sub->stats().incompatible == 1);
  REQUIRE(pub->publish_text("not for it"));
  // Past the subscriber's retry (1 s): refused again, still reported once on each side.
  const auto until = clock_type::now() + 1500ms;
  while (clock_type::now() < until) {
    (void)pub->service();
    sub->wait_poll([&](const rill::MessageView&) { ++delivered; }, 16, 2ms);
  }
  CHECK(delivered == 0);
  CHECK(events.size() == 1);
  CHECK(pub->stats().incompatible == 1);
  CHECK(pub->stats().subscribers == 0);
}

TEST_CASE("a slot's consumer group name is untrusted: too long, or not file-safe in a durable group, is refused") {
  rill::Node node;
  TempDir dir;
  const auto ep = rilltest::fresh_shm_endpoint();
  auto pub = node.publisher({.endpoint = ep,
                             .topic = "g/t",
                             .durability = rill::Durability::persistent(dir.str()),
                             .log = {.fsync = rill::FsyncPolicy::never()}});
  REQUIRE(pub);
  HandSlot hand(ep);
  struct Case {
    std::uint32_t durability;
    std::string group;
    std::uint32_t group_bytes;
  };
  for (const auto& c : {Case{0, "g", 129}, Case{0, "g", 0xffffffffu}, Case{0, std::string("a\0b", 3), 0},
                        Case{2, "../g", 0}, Case{2, ".g", 0}, Case{2, "a b", 0}}) {
    CAPTURE(c.durability);
    CAPTURE(c.group_bytes);
    auto& s = hand.claim(c.durability, 0, c.durability == 2 ? "x" : "", c.group, c.group_bytes);
    (void)pub->service();
    CHECK(s.rejected.load() == static_cast<std::uint32_t>(shm::RejectReason::malformed));
    CHECK(s.joined.load() == 0);
    CHECK(pub->stats().subscribers == 0);
    hand.leave();
    (void)pub->service();
    CHECK(s.owner.load() == 0);
  }
  // A volatile group's name only has to fit; a durable one's is stored as "group:NAME".
  auto& s = hand.claim(0, 0, "", "a b");
  (void)pub->service();
  CHECK(s.rejected.load() == 0);
  CHECK(s.joined.load() == 1);
  CHECK(pub->stats().subscribers == 1);
  // A subscriber refuses a name that would not fit its slot.
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = "g/", .group = std::string(129, 'g')});
  REQUIRE_FALSE(sub);
  CHECK(sub.error().code == rill::Errc::invalid_argument);
}

TEST_CASE("a durable group member found dead: what it was pushed and had not acknowledged goes to the survivor") {
  rill::Node node;
  TempDir dir, state;
  const auto ep = rilltest::fresh_shm_endpoint();
  auto pub = node.publisher({.endpoint = ep,
                             .topic = "g/t",
                             .durability = rill::Durability::persistent(dir.str()),
                             .log = {.fsync = rill::FsyncPolicy::never()}});
  REQUIRE(pub);
  HandSlot hand(ep);  // a member that is pushed messages and never takes them
  auto& s = hand.claim(2, static_cast<std::uint32_t>(rill::StartFrom::end), "h", "g");
  auto survivor = node.subscriber({.endpoints = {ep},
                                   .prefix = "g/",
                                   .policy = rill::Policy::backpressure(1024),
                                   .durability = rill::Durability::persistent(),
                                   .durable_name = "b",
                                   .state_dir = state.str(),
                                   .group = "g"});
  REQUIRE(survivor);
  std::vector<std::uint64_t> got;
  auto poll = [&] {
    (void)pub->service();
    survivor->poll([&](const rill::MessageView& m) { got.push_back(m.sequence()); }, 256);
  };
  const auto joined_by = clock_type::now() + 10s;
  while (pub->stats().subscribers < 2 && clock_type::now() < joined_by) poll();
  REQUIRE(pub->stats().subscribers == 2);
  REQUIRE(s.joined.load() == 1);
  for (int i = 0; i < 100; ++i) REQUIRE(pub->publish_text("m"));
  const auto pushed = hand.pushed();
  REQUIRE(pushed.size() == 50);  // round-robin between the two
  // It acknowledges its first 10 (the word names the last one handled, in push order).
  s.acked.store(pushed[9]);
  (void)pub->service();
  // Its process "dies": the slot's pid now names a process that is gone.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  REQUIRE(child > 0);
  REQUIRE(::waitpid(child, nullptr, 0) == child);
  s.owner.store(shm::make_owner(static_cast<std::uint32_t>(child), shm::SlotState::active));
  // Slot liveness finds it (every 100 ms); its 40 unacknowledged messages go to the survivor.
  const auto deadline = clock_type::now() + 10s;
  while (got.size() < 90 && clock_type::now() < deadline) poll();
  CHECK(pub->stats().reclaimed == 1);
  CHECK(pub->stats().redelivered == 40);
  REQUIRE(got.size() == 90);
  std::vector<std::uint64_t> again(got.begin() + 50, got.end());
  CHECK(again == std::vector<std::uint64_t>(pushed.begin() + 10, pushed.end()));
  std::sort(got.begin(), got.end());
  CHECK(std::adjacent_find(got.begin(), got.end()) == got.end());  // nothing twice
}

TEST_CASE("durability per publisher on one endpoint: one added later serves a registered durable subscription from seq 1, acks kept per publisher") {
  rill::Node node;
  TempDir state, log_a, log_b;
  const auto ep = rilltest::fresh_shm_endpoint();
  const auto persistent = [&](const char* topic, const TempDir& log) {
    return rill::PublisherOptions{.endpoint = ep,
                                  .topic = topic,
                                  .durability = rill::Durability::persistent(log.str()),
                                  .log = {.fsync = rill::FsyncPolicy::never()}};
  };
  const auto durable_sub = [&] {
    return node.subscriber({.endpoints = {ep},
                            .prefix = "d/",
                            .policy = rill::Policy::backpressure(64),
                            .durability = rill::Durability::persistent(),
                            .durable_name = "both",
                            .state_dir = state.str()});
  };
  auto a = node.publisher(persistent("d/a", log_a));
  REQUIRE(a);
  std::map<std::uint64_t, std::vector<std::uint64_t>> seqs;  // per publisher id
  const auto h = [&](const rill::MessageView& m) { seqs[m.publisher_id()].push_back(m.sequence()); };
  const auto drive = [&](rill::Subscriber& sub, std::size_t each, rill::Publisher& b) {
    const auto deadline = clock_type::now() + 20s;
    while ((seqs[a->id()].size() < each || seqs[b.id()].size() < each) && clock_type::now() < deadline) {
      (void)a->service();
      (void)b.service();
      sub.wait_poll(h, 64, 1ms);
    }
  };
  const auto range = [](std::uint64_t first, std::uint64_t last) {
    std::vector<std::uint64_t> v;
    for (auto s = first; s <= last; ++s) v.push_back(s);
    return v;
  };
  std::optional<rill::Publisher> b;
  {
    auto sub = durable_sub();
    REQUIRE(sub);
    REQUIRE(rilltest::attach(*a, *sub));
    for (int i = 0; i < 50; ++i) REQUIRE(a->publish_text("a"));
    // Created while the subscription is registered and published at once: its pre-claimed
    // slot carries the durable request (name, start), so it is served as a durable one.
    auto made = node.publisher(persistent("d/b", log_b));
    REQUIRE(made);
    b.emplace(std::move(*made));
    for (int i = 0; i < 50; ++i) REQUIRE(b->publish_text("b"));
    drive(*sub, 50, *b);
    CHECK(seqs[a->id()] == range(1, 50));
    CHECK(seqs[b->id()] == range(1, 50));
    CHECK(sub->stats().gaps == 0);
  }  // closing acknowledges what was handled, to each publisher
  for (int i = 0; i < 10; ++i) {
    REQUIRE(a->publish_text("a"));
    REQUIRE(b->publish_text("b"));
  }
  CHECK(a->stats().acks > 0);
  CHECK(b->stats().acks > 0);
  seqs.clear();
  auto again = durable_sub();
  REQUIRE(again);
  drive(*again, 10, *b);
  // Each publisher resumes the name after its own stored position.
  CHECK(seqs[a->id()] == range(51, 60));
  CHECK(seqs[b->id()] == range(51, 60));
  CHECK(again->stats().gaps == 0);
}
