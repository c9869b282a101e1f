// The subscriber side of durability: the exactly-once state file, acks, in-doubt messages,
// retention losses and REJECT (handler retries and dead letters: handler_failure_test.cpp).
//
// The durable cases talk to a scripted publisher: a bare ZeroMQ ROUTER speaking the tcp
// wire protocol (PROTOCOL.md), so every WELCOME, REJECT, resend and ACK is under the test's
// control and observable byte for byte.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "policies/durability/delivered_store.hpp"
#include "rill/dead_letter.hpp"
#include "durable_checks.hpp"
#include "scripted_publisher.hpp"

using rill::detail::DeliveredStore;
using namespace rilltest;

TEST_SUITE("delivered store") {
  TEST_CASE("positions survive a reopen; eviction takes the least recently used") {
    TempDir dir;
    {
      auto s = DeliveredStore::open(dir.path(), "a");
      REQUIRE(s);
      auto& e = s->slot(7);
      DeliveredStore::begin(e, 41);
      DeliveredStore::finish(e, 41);
      DeliveredStore::begin(s->slot(8), 5);  // the handler never returned
    }
    auto s = DeliveredStore::open(dir.path(), "a");
    REQUIRE(s);
    REQUIRE(s->find(7) != nullptr);
    CHECK(s->find(7)->delivered == 41);
    CHECK(s->find(7)->pending == 0);
    REQUIRE(s->find(8) != nullptr);
    CHECK(s->find(8)->pending == 5);
    CHECK(s->find(8)->delivered == 0);
    // Fill it: 7 and 8 are the oldest; 7 was used again, so 8 goes first.
    (void)s->slot(7);
    for (std::uint64_t id = 100; id < 100 + DeliveredStore::capacity - 2; ++id) (void)s->slot(id);
    CHECK(s->find(8) != nullptr);
    (void)s->slot(9999);
    CHECK(s->find(8) == nullptr);
    CHECK(s->find(7) != nullptr);
    CHECK(s->find(9999)->delivered == 0);
    CHECK(s->sync());
  }

  TEST_CASE("a second holder of the same name is refused with a clear error") {
    TempDir dir;
    auto first = DeliveredStore::open(dir.path(), "busy");
    REQUIRE(first);
    auto second = DeliveredStore::open(dir.path(), "busy");
    REQUIRE(!second);
    CHECK(second.error().code == rill::Errc::address_in_use);
    CHECK(second.error().detail.find("durable subscription busy is in use by another process") != std::string::npos);
    first = std::unexpected(rill::Error{});  // closed: the lock goes with it
    CHECK(DeliveredStore::open(dir.path(), "busy"));
  }

  TEST_CASE("short, foreign and tampered files are corrupt, naming the file") {
    TempDir dir;
    const auto path = dir.path() / "x.rill-state";
    std::size_t size = 0;
    {
      auto s = DeliveredStore::open(dir.path(), "x");
      REQUIRE(s);
      (void)s->slot(1);
      (void)s->slot(2);
      size = std::filesystem::file_size(path);
    }
    const auto write_at = [&](std::size_t off, std::string_view bytes) {
      const int fd = ::open(path.c_str(), O_WRONLY);
      REQUIRE(fd >= 0);
      REQUIRE(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(off)) == static_cast<ssize_t>(bytes.size()));
      ::close(fd);
    };
    const auto expect_corrupt = [&](const char* what) {
      CAPTURE(what);
      auto s = DeliveredStore::open(dir.path(), "x");
      REQUIRE(!s);
      CHECK(s.error().code == rill::Errc::corrupt);
      CHECK(s.error().detail.find(path.string()) != std::string::npos);
    };
    const auto original = [&] {
      std::ifstream in(path, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), {});
    }();
    const auto restore = [&] {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out << original;
    };
    std::filesystem::resize_file(path, size - 1);
    expect_corrupt("short");
    restore();
    std::filesystem::resize_file(path, size + 8);
    expect_corrupt("long");
    restore();
    write_at(0, "NOTRILL!");
    expect_corrupt("bad magic");
    restore();
    write_at(8, std::string("\x09\0\0\0", 4));
    expect_corrupt("version 9");
    restore();
    // Both slots now claim publisher 1.
    write_at(64 + 32, std::string("\x01\0\0\0\0\0\0\0", 8));
    expect_corrupt("duplicate publisher");
    restore();
    CHECK(DeliveredStore::open(dir.path(), "x"));
    // A file whose creation died before its header was written is started afresh.
    std::filesystem::remove(path);
    { std::ofstream(path, std::ios::binary) << std::string(size, '\0'); }
    CHECK(DeliveredStore::open(dir.path(), "x"));
  }
}

TEST_SUITE("durable subscription") {
  TEST_CASE("options are checked before anything connects") {
    rill::Node node;
    TempDir dir;
    const auto ep = fresh_endpoint();
    auto o = durable(ep, dir, "");
    CHECK(node.subscriber(o).error().code == rill::Errc::invalid_argument);  // persistent needs a name
    o = durable(ep, dir, "../escape");
    CHECK(node.subscriber(o).error().code == rill::Errc::invalid_argument);
    o = durable(ep, dir, "ok");
    o.durability = rill::Durability::transient_local(5);
    CHECK(node.subscriber(o).error().code == rill::Errc::invalid_argument);  // a name needs persistent
    auto first = node.subscriber(durable(ep, dir, "ok"));
    REQUIRE(first);
    auto second = node.subscriber(durable(ep, dir, "ok"));
    REQUIRE(!second);
    CHECK(second.error().code == rill::Errc::address_in_use);
    CHECK(std::filesystem::exists(dir.path() / "ok.rill-state"));
  }

  TEST_CASE("a REJECT reaches on_incompatible once; nothing is delivered") {
    rill::Node node;
    TempDir dir;
    const auto ep = fresh_endpoint();
    ScriptedPublisher pub(ep);
    std::vector<rill::IncompatibleEvent> events;
    auto o = durable(ep, dir, "rej");
    o.on_incompatible = [&](const rill::IncompatibleEvent& e) { events.push_back(e); };
    auto sub = node.subscriber(o);
    REQUIRE(sub);
    int delivered = 0;
    const auto h = [&](const rill::MessageView&) { ++delivered; };
    REQUIRE(pump(*sub, pub, h, [&] { return pub.heard.subscribed; }));
    CHECK(pub.heard.durability == static_cast<std::uint8_t>(rill::DurabilityKind::persistent));
    CHECK(pub.heard.durable_name == "rej");
    CHECK(pub.heard.from == static_cast<std::uint8_t>(rill::StartFrom::last_ack));
    pub.reject();
    REQUIRE(pump(*sub, pub, h, [&] { return !events.empty(); }));
    pub.reject();  // the transport asks again now and then; the same refusal is not news
    pump_for(*sub, pub, h, 100ms);
    REQUIRE(events.size() == 1);
    CHECK(events[0].publisher_id == ScriptedPublisher::id);
    CHECK(events[0].offered == rill::DurabilityKind::volatile_);
    CHECK(events[0].requested == rill::DurabilityKind::persistent);
    CHECK(events[0].reason == "volatile publisher");
    CHECK(events[0].endpoint == ep);
    CHECK(sub->stats().incompatible == 1);
    CHECK(delivered == 0);
  }

  TEST_CASE("what retention deleted is reported as a gap from the WELCOME") {
    rill::Node node;
    TempDir dir;
    const auto ep = fresh_endpoint();
    ScriptedPublisher pub(ep);
    std::vector<rill::LossEvent> losses;
    auto o = durable(ep, dir, "behind");
    o.on_loss = [&](const rill::LossEvent& e) { losses.push_back(e); };
    auto sub = node.subscriber(o);
    REQUIRE(sub);
    std::vector<std::uint64_t> seqs;
    const auto h = [&](const rill::MessageView& m) { seqs.push_back(m.sequence()); };
    REQUIRE(pump(*sub, pub, h, [&] { return pub.heard.subscribed; }));
    pub.welcome(50, 20);
    pub.data(50);
    REQUIRE(pump(*sub, pub, h, [&] { return seqs.size() == 1; }));
    REQUIRE(losses.size() == 1);
    CHECK(losses[0].publisher_id == ScriptedPublisher::id);
    CHECK(losses[0].first == 30);
    CHECK(losses[0].last == 49);
    CHECK(sub->stats().gaps == 20);
    CHECK(seqs == std::vector<std::uint64_t>{50});
  }

  TEST_CASE("exactly once into the handler across a restart; acks follow the handler") {
    rill::Node node;
    TempDir dir;
    const auto ep = fresh_endpoint();
    ScriptedPublisher pub(ep);
    std::vector<std::uint64_t> seqs;
    const auto h = [&](const rill::MessageView& m) { seqs.push_back(m.sequence()); };
    {
      auto sub = node.subscriber(durable(ep, dir, "once"));
      REQUIRE(sub);
      REQUIRE(pump(*sub, pub, h, [&] { return pub.heard.subscribed; }));
      pub.welcome(1);
      for (std::uint64_t s = 1; s <= 10; ++s) pub.data(s);
      REQUIRE(pump(*sub, pub, h, [&] { return !pub.heard.acks.empty() && pub.heard.acks.back() == 10; }));
      CHECK(std::is_sorted(pub.heard.acks.begin(), pub.heard.acks.end()));
      CHECK(sub->stats().acked == 10);
    }
    // The publisher stored only up to 5 (say the last ACKs were lost): it resends 6..15.
    pub.heard = {};
    auto sub = node.subscriber(durable(ep, dir, "once"));
    REQUIRE(sub);
    REQUIRE(pump(*sub, pub, h, [&] { return pub.heard.subscribed; }));
    pub.welcome(6);
    // Right after the WELCOME it acknowledges what it finished, so the publisher catches up.
    REQUIRE(pump(*sub, pub, h, [&] { return !pub.heard.acks.empty(); }));
    CHECK(pub.heard.acks.front() == 10);
    for (std::uint64_t s = 6; s <= 15; ++s) pub.data(s);
    REQUIRE(pump(*sub, pub, h, [&] { return pub.heard.acks.back() == 15; }));
    std::vector<std::uint64_t> want;
    for (std::uint64_t s = 1; s <= 15; ++s) want.push_back(s);
    CHECK(seqs == want);
    CHECK(sub->stats().duplicates == 5);
    CHECK(sub->stats().gaps == 0);
    CHECK(sub->stats().in_doubt == 0);
  }

  TEST_CASE("a message the last run died inside: the in_doubt callback decides") {
    for (const int answer : {1, 0, -1}) {  // true, false, no callback
      CAPTURE(answer);
      rill::Node node;
      TempDir dir;
      {
        // What a kill -9 inside the handler for seq 8 leaves behind.
        auto s = DeliveredStore::open(dir.path(), "doubt");
        REQUIRE(s);
        auto& e = s->slot(ScriptedPublisher::id);
        DeliveredStore::finish(e, 7);
        DeliveredStore::begin(e, 8);
      }
      const auto ep = fresh_endpoint();
      ScriptedPublisher pub(ep);
      std::vector<std::pair<std::uint64_t, std::uint64_t>> asked;
      auto o = durable(ep, dir, "doubt");
      if (answer >= 0) {
        o.in_doubt = [&](std::uint64_t p, std::uint64_t s) {
          asked.emplace_back(p, s);
          return answer == 1;
        };
      }
      auto sub = node.subscriber(o);
      REQUIRE(sub);
      CHECK(sub->stats().in_doubt == 1);
      if (answer >= 0) {
        REQUIRE(asked.size() == 1);
        CHECK(asked[0] == std::pair<std::uint64_t, std::uint64_t>{ScriptedPublisher::id, 8});
      }
      std::vector<std::uint64_t> seqs;
      const auto h = [&](const rill::MessageView& m) { seqs.push_back(m.sequence()); };
      REQUIRE(pump(*sub, pub, h, [&] { return pub.heard.subscribed; }));
      pub.welcome(8);  // the publisher had our ack for 7
      pub.data(8);
      pub.data(9);
      REQUIRE(pump(*sub, pub, h, [&] { return !seqs.empty() && seqs.back() == 9; }));
      CHECK(seqs == (answer == 1 ? std::vector<std::uint64_t>{9} : std::vector<std::uint64_t>{8, 9}));
    }
  }

  TEST_CASE("auto_ack off: nothing is acknowledged until ack(), and only what was delivered") {
    rill::Node node;
    TempDir dir;
    const auto ep = fresh_endpoint();
    ScriptedPublisher pub(ep);
    auto o = durable(ep, dir, "manual");
    o.auto_ack = false;
    auto sub = node.subscriber(o);
    REQUIRE(sub);
    int got = 0;
    const auto h = [&](const rill::MessageView&) { ++got; };
    REQUIRE(pump(*sub, pub, h, [&] { return pub.heard.subscribed; }));
    pub.welcome(1);
    for (std::uint64_t s = 1; s <= 5; ++s) pub.data(s);
    REQUIRE(pump(*sub, pub, h, [&] { return got == 5; }));
    pump_for(*sub, pub, h, 50ms);
    CHECK(pub.heard.acks.empty());
    const auto too_far = sub->ack(ScriptedPublisher::id, 6);
    REQUIRE(!too_far);
    CHECK(too_far.error().code == rill::Errc::invalid_argument);
    CHECK(!sub->ack(12345, 1));
    REQUIRE(sub->ack(ScriptedPublisher::id, 3));
    REQUIRE(pump(*sub, pub, h, [&] { return !pub.heard.acks.empty(); }));
    CHECK(pub.heard.acks == std::vector<std::uint64_t>{3});
    CHECK(sub->stats().acked == 3);
  }

  TEST_CASE("handled_on_ack: handled-ness follows ack(); after a crash the unacknowledged are delivered again") {
    rill::Node node;
    TempDir dir;
    const auto ep = fresh_endpoint();
    {
      // Combinations that make no sense are refused before anything connects.
      auto o = durable(ep, dir, "bad");
      o.handled_on_ack = true;
      CHECK(node.subscriber(o).error().code == rill::Errc::invalid_argument);  // auto_ack still on
      o.auto_ack = false;
      o.group = "g";
      CHECK(node.subscriber(o).error().code == rill::Errc::invalid_argument);  // a consumer group
      rill::SubscriberOptions v;
      v.endpoints = {ep};
      v.auto_ack = false;
      v.handled_on_ack = true;
      CHECK(node.subscriber(v).error().code == rill::Errc::invalid_argument);  // not durable
    }
    ScriptedPublisher pub(ep);
    auto o = durable(ep, dir, "onack");
    o.auto_ack = false;
    o.handled_on_ack = true;
    std::vector<std::uint64_t> seqs;
    const auto h = [&](const rill::MessageView& m) { seqs.push_back(m.sequence()); };
    {
      auto sub = node.subscriber(o);
      REQUIRE(sub);
      REQUIRE(pump(*sub, pub, h, [&] { return pub.heard.subscribed; }));
      pub.welcome(1);
      for (std::uint64_t s = 1; s <= 10; ++s) pub.data(s);
      REQUIRE(pump(*sub, pub, h, [&] { return seqs.size() == 10; }));
      CHECK(!sub->ack(ScriptedPublisher::id, 11));  // not handed to the handler yet
      REQUIRE(sub->ack(ScriptedPublisher::id, 4));
      REQUIRE(sub->ack(ScriptedPublisher::id, 7));
      REQUIRE(sub->ack(ScriptedPublisher::id, 6));  // cumulative: covered, no step back
      REQUIRE(pump(*sub, pub, h, [&] { return !pub.heard.acks.empty() && pub.heard.acks.back() == 7; }));
      pump_for(*sub, pub, h, 30ms);
      CHECK(pub.heard.acks.back() == 7);
      // The "crash": the object goes away with 8..10 handed to the handler but never acked.
    }
    {
      auto s = DeliveredStore::open(dir.path(), "onack");
      REQUIRE(s);
      REQUIRE(s->find(ScriptedPublisher::id) != nullptr);
      CHECK(s->find(ScriptedPublisher::id)->delivered == 7);  // the acked position, not the handler's
      CHECK(s->find(ScriptedPublisher::id)->pending == 0);
    }
    // The publisher's stored position lags (it had 5): it resends 6.. and we skip what we acked.
    pub.heard = {};
    auto sub = node.subscriber(o);
    REQUIRE(sub);
    CHECK(sub->stats().in_doubt == 0);
    REQUIRE(pump(*sub, pub, h, [&] { return pub.heard.subscribed; }));
    pub.welcome(6);
    REQUIRE(pump(*sub, pub, h, [&] { return !pub.heard.acks.empty(); }));
    CHECK(pub.heard.acks.front() == 7);  // it tells the publisher where it stands
    for (std::uint64_t s = 6; s <= 12; ++s) pub.data(s);
    REQUIRE(pump(*sub, pub, h, [&] { return seqs.back() == 12; }));
    // Run 1 saw 1..10; run 2 sees 8..12: the unacked 8..10 again, the acked 6 and 7 never.
    CHECK(seqs == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 8, 9, 10, 11, 12});
    CHECK(sub->stats().duplicates == 2);
    REQUIRE(sub->ack(ScriptedPublisher::id, 12));
    REQUIRE(pump(*sub, pub, h, [&] { return pub.heard.acks.back() == 12; }));
  }

  TEST_CASE("take(): a taken message counts as handled") {
    rill::Node node;
    TempDir dir;
    const auto ep = fresh_endpoint();
    ScriptedPublisher pub(ep);
    {
      auto sub = node.subscriber(durable(ep, dir, "taker"));
      REQUIRE(sub);
      REQUIRE(pump(*sub, pub, noop, [&] { return pub.heard.subscribed; }));
      pub.welcome(1);
      pub.data(1);
      pub.data(2);
      std::vector<std::uint64_t> seqs;
      const auto deadline = clock_type::now() + 10s;
      while (seqs.size() < 2 && clock_type::now() < deadline) {
        if (auto s = sub->wait_take(5ms)) seqs.push_back(s->view().sequence());
        pub.receive();
      }
      CHECK(seqs == std::vector<std::uint64_t>{1, 2});
      REQUIRE(pump(*sub, pub, noop, [&] { return !pub.heard.acks.empty() && pub.heard.acks.back() == 2; }));
    }
    auto s = DeliveredStore::open(dir.path(), "taker");
    REQUIRE(s);
    REQUIRE(s->find(ScriptedPublisher::id) != nullptr);
    CHECK(s->find(ScriptedPublisher::id)->delivered == 2);
  }
}

TEST_SUITE("with the tcp publisher") {
  TEST_CASE("a volatile publisher refuses a persistent request: on_incompatible, nothing delivered") {
    TempDir dir;
    const auto ep = fresh_endpoint();
    rilltest::check_volatile_refuses_persistent(ep, durable(ep, dir, "refused"), 50ms);
  }

  TEST_CASE("a persistent publisher: resume from the last ack across restarts of either side, each message once") {
    rill::Node node;
    TempDir dir;
    TempDir log_dir;
    const auto ep = fresh_endpoint();
    const rill::PublisherOptions popts{.endpoint = ep,
                                       .topic = "t",
                                       .durability = rill::Durability::persistent(log_dir.str()),
                                       .log = {.fsync = rill::FsyncPolicy::never()}};
    auto pub = std::make_optional(*node.publisher(popts));
    std::vector<std::uint64_t> seqs;
    const auto h = [&](const rill::MessageView& m) { seqs.push_back(m.sequence()); };
    // Drives both until the handler saw `last` (handing it at most up to `stop_at`).
    const auto drive = [&](rill::Subscriber& sub, std::uint64_t last) {
      const auto deadline = clock_type::now() + 20s;
      while ((seqs.empty() || seqs.back() < last) && clock_type::now() < deadline) {
        (void)pub->service();
        sub.wait_poll(h, seqs.empty() ? 64 : std::min<std::uint64_t>(64, last - seqs.back()), 1ms);
      }
      return !seqs.empty() && seqs.back() == last;
    };
    for (int i = 0; i < 1000; ++i) REQUIRE(pub->publish_text("a"));
    {
      auto sub = node.subscriber(durable(ep, dir, "resume"));
      REQUIRE(sub);
      REQUIRE(drive(*sub, 400));  // from the start (no ack yet), and only 400 of them
      // Closing acknowledges what was handled; the rest of its window is not.
    }
    for (int i = 0; i < 500; ++i) REQUIRE(pub->publish_text("b"));  // 1001..1500 while it is away
    auto sub = node.subscriber(durable(ep, dir, "resume"));
    REQUIRE(sub);
    REQUIRE(drive(*sub, 1500));
    // The publisher restarts from its log (same id, sequence continues) under the subscriber.
    const auto id = pub->id();
    pub.reset();
    pub.emplace(*node.publisher(popts));
    CHECK(pub->id() == id);
    for (int i = 0; i < 100; ++i) REQUIRE(pub->publish_text("c"));
    REQUIRE(drive(*sub, 1600));
    std::vector<std::uint64_t> want(1600);
    for (std::uint64_t i = 0; i < want.size(); ++i) want[i] = i + 1;
    CHECK(seqs == want);
    CHECK(sub->stats().gaps == 0);
    CHECK(sub->stats().acked <= 1600);
    // The publisher got our position: it is stored under the durable name.
    const auto stored_deadline = clock_type::now() + 10s;
    while (sub->stats().acked < 1600 && clock_type::now() < stored_deadline) {
      (void)pub->service();
      sub->wait_poll(h, 16, 1ms);
    }
    CHECK(sub->stats().acked == 1600);
  }
}
