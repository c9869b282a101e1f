// Several topics (publishers) on one endpoint: each keeps its own id and gap-free
// sequence, a subscription gets every publisher there whose topic matches, one that
// appears later is picked up from its first message, one that leaves ends only itself.
// Built once per transport (fresh_endpoint()).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>
#include <thread>

#include "rill/rill.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using rilltest::attach;
using rilltest::fresh_endpoint;
using rilltest::poll_until;

namespace {

struct Seen {
  std::map<std::string, std::vector<std::uint64_t>> seqs;  // per topic, in arrival order
  std::map<std::string, std::set<std::uint64_t>> ids;      // publisher ids per topic
  std::size_t total = 0;
  // Passed as the handler by reference (a Handler does not own what it calls).
  void operator()(const rill::MessageView& m) {
    const std::string topic(m.topic());
    seqs[topic].push_back(m.sequence());
    ids[topic].insert(m.publisher_id());
    ++total;
  }
};

std::vector<std::uint64_t> one_to(std::uint64_t n) {
  std::vector<std::uint64_t> v;
  for (std::uint64_t i = 1; i <= n; ++i) v.push_back(i);
  return v;
}

}  // namespace

TEST_CASE("two publishers on one endpoint: a prefix subscriber gets both, each gap-free with its own id") {
  rill::Node node;
  const auto ep = fresh_endpoint();
  auto quotes = node.publisher({.endpoint = ep, .topic = "md/quotes"});
  REQUIRE(quotes);
  auto trades = node.publisher({.endpoint = ep, .topic = "md/trades"});
  REQUIRE(trades);
  auto news = node.publisher({.endpoint = ep, .topic = "news/eu"});
  REQUIRE(news);
  CHECK(quotes->id() != trades->id());
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = "md/", .policy = rill::Policy::drop_oldest(4096)});
  REQUIRE(sub);
  REQUIRE(attach(*quotes, *sub));
  REQUIRE(attach(*trades, *sub));
  REQUIRE(poll_until(*sub, [](const rill::MessageView&) {}, [&] { return sub->stats().publishers == 2; }));
  for (int i = 0; i < 300; ++i) {
    REQUIRE(quotes->publish_text("q"));
    if (i % 3 == 0) REQUIRE(trades->publish_text("t"));
    REQUIRE(news->publish_text("n"));
  }
  Seen seen;
  REQUIRE(poll_until(*sub, seen, [&] { return seen.total == 400; }));
  CHECK(seen.seqs["md/quotes"] == one_to(300));
  CHECK(seen.seqs["md/trades"] == one_to(100));
  CHECK(seen.seqs.count("news/eu") == 0);
  CHECK(seen.ids["md/quotes"] == std::set<std::uint64_t>{quotes->id()});
  CHECK(seen.ids["md/trades"] == std::set<std::uint64_t>{trades->id()});
  CHECK(sub->stats().gaps == 0);
  CHECK(sub->stats().publisher_restarts == 0);
  CHECK(sub->stats().publishers == 2);
}

TEST_CASE("a publisher that appears later is picked up from its first message, without reconnecting") {
  rill::Node node;
  const auto ep = fresh_endpoint();
  auto first = node.publisher({.endpoint = ep, .topic = "app/a"});
  REQUIRE(first);
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = "app/", .policy = rill::Policy::drop_oldest(4096)});
  REQUIRE(sub);
  REQUIRE(attach(*first, *sub));
  Seen seen;
  for (int round = 0; round < 5; ++round) {
    // Created and published at once: no wait for the subscriber. Its greeting goes out
    // when it is created, before its first message.
    auto later = node.publisher({.endpoint = ep, .topic = "app/n" + std::to_string(round)});
    REQUIRE(later);
    for (int i = 0; i < 20; ++i) REQUIRE(later->publish_text("x"));
    REQUIRE(poll_until(*sub, seen, [&] { return seen.total == 20u * (round + 1); }));
    CHECK(seen.seqs["app/n" + std::to_string(round)] == one_to(20));
  }
  CHECK(sub->stats().gaps == 0);
  CHECK(sub->stats().publisher_restarts == 0);
}

TEST_CASE("one publisher leaving ends only its own stream; the others go on") {
  rill::Node node;
  const auto ep = fresh_endpoint();
  auto stays = node.publisher({.endpoint = ep, .topic = "s/stays"});
  REQUIRE(stays);
  std::vector<rill::LossEvent> losses;
  auto sub = node.subscriber({.endpoints = {ep},
                              .prefix = "s/",
                              .policy = rill::Policy::drop_oldest(4096),
                              .on_loss = [&](const rill::LossEvent& e) { losses.push_back(e); }});
  REQUIRE(sub);
  REQUIRE(attach(*stays, *sub));
  Seen seen;
  {
    auto leaves = node.publisher({.endpoint = ep, .topic = "s/leaves"});
    REQUIRE(leaves);
    for (int i = 0; i < 10; ++i) REQUIRE(leaves->publish_text("l"));
    REQUIRE(poll_until(*sub, seen, [&] { return seen.total == 10; }));
  }  // closes: BYE after 10
  for (int i = 0; i < 10; ++i) REQUIRE(stays->publish_text("s"));
  REQUIRE(poll_until(*sub, seen, [&] { return seen.total == 20; }));
  CHECK(seen.seqs["s/leaves"] == one_to(10));
  CHECK(seen.seqs["s/stays"] == one_to(10));
  CHECK(losses.empty());
  CHECK(stays->stats().subscribers == 1);
  // And one more later, on the same endpoint, to the same subscription.
  auto again = node.publisher({.endpoint = ep, .topic = "s/again"});
  REQUIRE(again);
  REQUIRE(again->publish_text("a"));
  REQUIRE(poll_until(*sub, seen, [&] { return seen.total == 21; }));
  CHECK(seen.seqs["s/again"] == one_to(1));
  CHECK(sub->stats().gaps == 0);
}

TEST_CASE("publishers on one endpoint may run on their own threads") {
  rill::Node node;
  const auto ep = fresh_endpoint();
  constexpr int topics = 4;
  constexpr int each = 2000;
  std::vector<rill::Publisher> pubs;
  for (int t = 0; t < topics; ++t) {
    auto p = node.publisher({.endpoint = ep, .topic = "th/" + std::to_string(t), .publish_timeout = 10s});
    REQUIRE(p);
    pubs.push_back(std::move(*p));
  }
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = "th/", .policy = rill::Policy::backpressure(64)});
  REQUIRE(sub);
  for (auto& p : pubs) REQUIRE(attach(p, *sub));
  REQUIRE(poll_until(*sub, [](const rill::MessageView&) {}, [&] { return sub->stats().publishers == topics; }));
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (auto& p : pubs) {
    threads.emplace_back([&, pub = &p] {
      for (int i = 0; i < each; ++i) {
        if (!pub->publish_text("m")) ++failed;
      }
    });
  }
  Seen seen;
  const bool all = poll_until(*sub, seen, [&] { return seen.total == topics * each; });
  for (auto& t : threads) t.join();
  INFO("received " << seen.total << ", failed publishes " << failed.load() << ", gaps " << sub->stats().gaps);
  REQUIRE(all);
  CHECK(failed == 0);
  for (int t = 0; t < topics; ++t) CHECK(seen.seqs["th/" + std::to_string(t)] == one_to(each));
  // One backpressure window for the subscription, shared by the four: nothing dropped.
  CHECK(sub->stats().gaps == 0);
  CHECK(sub->stats().dropped == 0);
}

TEST_CASE("one owner per endpoint: a second Node binding it while the first holds it gets address_in_use") {
  const auto ep = fresh_endpoint();
  rill::Node owner;
  auto first = owner.publisher({.endpoint = ep, .topic = "o/a"});
  REQUIRE(first);
  auto second = owner.publisher({.endpoint = ep, .topic = "o/b"});  // the same Node: shares it
  REQUIRE(second);
  rill::Node other;
  auto refused = other.publisher({.endpoint = ep, .topic = "o/c"});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == rill::Errc::address_in_use);
}

TEST_CASE("an endpoint bound again with several publishers counts one restart, not one per publisher") {
  const auto ep = fresh_endpoint();
  rill::Node node;
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = "r/", .policy = rill::Policy::drop_oldest(4096)});
  REQUIRE(sub);
  Seen seen;
  for (int life = 0; life < 2; ++life) {
    INFO("life " << life);
    // Both publishers of one life share the endpoint instance.
    auto a = node.publisher({.endpoint = ep, .topic = "r/a"});
    REQUIRE(a);
    auto b = node.publisher({.endpoint = ep, .topic = "r/b"});
    REQUIRE(b);
    REQUIRE(attach(*a, *sub));
    REQUIRE(attach(*b, *sub));
    REQUIRE(poll_until(*sub, seen, [&] { return sub->stats().publishers == 2u * (life + 1); }));
    REQUIRE(a->publish_text("a"));
    REQUIRE(b->publish_text("b"));
    REQUIRE(poll_until(*sub, seen, [&] { return seen.total == 2u * (life + 1); }));
    CHECK(sub->stats().publisher_restarts == static_cast<std::uint64_t>(life));
  }  // both close: the endpoint is unbound, and bound again (a new instance) in the next life
  CHECK(sub->stats().gaps == 0);
}

#ifndef RILL_TEST_SHM_ENDPOINTS
TEST_CASE("a quiet publisher greets a new subscription without being called (no service())") {
  rill::Node node;
  const auto ep = fresh_endpoint();
  auto pub = node.publisher({.endpoint = ep, .topic = "q/x"});
  REQUIRE(pub);
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = "q/"});
  REQUIRE(sub);
  // Only the subscriber is driven: the endpoint's helper (tcp) or the publisher's idle
  // helper (reliable udp) answers for the publisher.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (sub->stats().publishers == 0 && std::chrono::steady_clock::now() < deadline) {
    sub->wait_poll([](const rill::MessageView&) {}, 0, 5ms);
  }
  REQUIRE(sub->stats().publishers == 1);
  REQUIRE(pub->publish_text("first"));
  Seen seen;
  REQUIRE(poll_until(*sub, seen, [&] { return seen.total == 1; }));
  CHECK(seen.seqs["q/x"] == one_to(1));
}
#endif
