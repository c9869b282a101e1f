// Handler failures on any subscription: retries with back-off, then dead letters with
// the reason and attempt count, and delivery going on in order.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "rill/dead_letter.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using rilltest::fresh_endpoint;
using rilltest::TempDir;
using clock_type = std::chrono::steady_clock;

TEST_SUITE("handler failures") {
  // A volatile tcp publisher with ten messages "m1".."m10" for `sub`.
  void publish_ten(rill::Node & node, const std::string& ep, rill::Subscriber& sub,
                   std::optional<rill::Publisher>& keep) {
    auto pub = node.publisher({.endpoint = ep, .topic = "t"});
    REQUIRE(pub);
    REQUIRE(rilltest::attach(*pub, sub));
    for (int i = 1; i <= 10; ++i) REQUIRE(pub->publish_text("m" + std::to_string(i)));
    keep.emplace(std::move(*pub));
  }

  std::vector<rill::DeadLetter> letters_in(const TempDir& dir, std::vector<std::string>& reasons,
                                           std::vector<std::string>& payloads) {
    std::vector<rill::DeadLetter> out;
    auto dlq = rill::DeadLetterLog::open(dir.path(), true);
    REQUIRE(dlq);
    REQUIRE(dlq->for_each(0, [&](const rill::DeadLetter& d) {
      out.push_back(d);
      reasons.emplace_back(d.reason);
      auto env = rill::verify_envelope(d.envelope);
      REQUIRE(env);
      payloads.emplace_back(rill::MessageView(*env, d.envelope).payload_text());
      return true;
    }));
    return out;
  }

  TEST_CASE("a message that always fails: 3 attempts with back-off, dead-lettered, the rest in order") {
    rill::Node node;
    TempDir dlq_dir;
    const auto ep = fresh_endpoint();
    constexpr auto backoff = 30ms;
    auto sub = node.subscriber({.endpoints = {ep},
                                .prefix = "t",
                                .retry = {.max_attempts = 3, .backoff = backoff, .dead_letter_dir = dlq_dir.str()}});
    REQUIRE(sub);
    std::optional<rill::Publisher> pub;
    publish_ten(node, ep, *sub, pub);
    std::vector<std::uint64_t> seqs;
    std::vector<clock_type::time_point> attempts;
    const auto h = [&](const rill::MessageView& m) {
      if (m.sequence() == 5) {
        attempts.push_back(clock_type::now());
        throw std::runtime_error("cannot handle m5");
      }
      seqs.push_back(m.sequence());
    };
    REQUIRE(rilltest::poll_until(*sub, h, [&] { return seqs.size() == 9; }));
    CHECK(seqs == std::vector<std::uint64_t>{1, 2, 3, 4, 6, 7, 8, 9, 10});
    REQUIRE(attempts.size() == 3);
    CHECK(attempts[1] - attempts[0] >= backoff);
    CHECK(attempts[2] - attempts[1] >= 2 * backoff);  // doubled
    const auto& st = sub->stats();
    CHECK(st.handler_failures == 3);
    CHECK(st.retries == 2);
    CHECK(st.dead_lettered == 1);
    CHECK(st.received == 10);
    std::vector<std::string> reasons, payloads;
    const auto letters = letters_in(dlq_dir, reasons, payloads);
    REQUIRE(letters.size() == 1);
    CHECK(letters[0].sequence == 5);
    CHECK(letters[0].attempts == 3);
    CHECK(letters[0].publisher_id == pub->id());
    CHECK(reasons[0] == "cannot handle m5");
    CHECK(payloads[0] == "m5");
  }

  TEST_CASE("poll_checked: an error return is retried; a message that then succeeds is not dead-lettered") {
    rill::Node node;
    TempDir dlq_dir;
    const auto ep = fresh_endpoint();
    auto sub = node.subscriber({.endpoints = {ep},
                                .prefix = "t",
                                .retry = {.max_attempts = 3, .backoff = 1ms, .dead_letter_dir = dlq_dir.str()}});
    REQUIRE(sub);
    std::optional<rill::Publisher> pub;
    publish_ten(node, ep, *sub, pub);
    std::vector<std::uint64_t> seqs;
    int calls_for_3 = 0;
    const auto h = [&](const rill::MessageView& m) -> rill::Result<void> {
      if (m.sequence() == 3 && ++calls_for_3 == 1) return rill::fail(rill::Errc::timed_out, "database busy");
      if (m.sequence() == 7) return rill::fail(rill::Errc::invalid_argument, "bad order 7");
      seqs.push_back(m.sequence());
      return {};
    };
    const auto deadline = clock_type::now() + 10s;
    while (seqs.size() < 9 && clock_type::now() < deadline) sub->wait_poll_checked(h, 64, 5ms);
    CHECK(seqs == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 8, 9, 10});
    CHECK(calls_for_3 == 2);
    const auto& st = sub->stats();
    CHECK(st.handler_failures == 1 + 3);
    CHECK(st.retries == 1 + 2);
    CHECK(st.dead_lettered == 1);
    std::vector<std::string> reasons, payloads;
    const auto letters = letters_in(dlq_dir, reasons, payloads);
    REQUIRE(letters.size() == 1);
    CHECK(letters[0].sequence == 7);
    CHECK(reasons[0] == "bad order 7");
  }

  TEST_CASE("callback mode takes the same path; a non-std exception is an unknown exception") {
    rill::Node node;
    TempDir dlq_dir;
    const auto ep = fresh_endpoint();
    auto pub = node.publisher({.endpoint = ep, .topic = "t"});
    REQUIRE(pub);
    std::atomic<int> ok{0};
    auto subscription = node.subscribe({.endpoints = {ep},
                                        .prefix = "t",
                                        .retry = {.max_attempts = 2, .backoff = 1ms, .dead_letter_dir = dlq_dir.str()}},
                                       [&](const rill::MessageView& m) {
                                         if (m.sequence() == 2) throw 42;
                                         ok.fetch_add(1);
                                       });
    REQUIRE(subscription);
    REQUIRE(pub->wait_for_subscribers(1, 10s));
    // Publish only once the subscription's thread has read the WELCOME (it then counts the
    // publisher): before that, m1 could be a start-up loss rather than a delivery.
    const auto welcomed_by = clock_type::now() + 10s;
    while (subscription->stats().publishers == 0 && clock_type::now() < welcomed_by) std::this_thread::sleep_for(1ms);
    REQUIRE(subscription->stats().publishers == 1);
    for (int i = 1; i <= 3; ++i) REQUIRE(pub->publish_text("m"));
    const auto deadline = clock_type::now() + 10s;
    while (subscription->stats().dead_lettered + subscription->stats().received < 4 && ok.load() < 2 &&
           clock_type::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    while (subscription->stats().received < 3 && clock_type::now() < deadline) std::this_thread::sleep_for(5ms);
    subscription->stop();
    CHECK(ok.load() == 2);
    CHECK(subscription->stats().dead_lettered == 1);
    std::vector<std::string> reasons, payloads;
    const auto letters = letters_in(dlq_dir, reasons, payloads);
    REQUIRE(letters.size() == 1);
    CHECK(letters[0].sequence == 2);
    CHECK(letters[0].attempts == 2);
    CHECK(reasons[0] == "unknown exception");
  }

  TEST_CASE("without a retry policy an exception still propagates out of poll()") {
    rill::Node node;
    const auto ep = fresh_endpoint();
    auto sub = node.subscriber({.endpoints = {ep}, .prefix = "t"});
    REQUIRE(sub);
    std::optional<rill::Publisher> pub;
    publish_ten(node, ep, *sub, pub);
    bool thrown = false;
    const auto deadline = clock_type::now() + 10s;
    while (!thrown && clock_type::now() < deadline) {
      try {
        sub->wait_poll([](const rill::MessageView&) { throw std::runtime_error("x"); }, 64, 5ms);
      } catch (const std::runtime_error&) {
        thrown = true;
      }
    }
    CHECK(thrown);
    CHECK(sub->stats().dead_lettered == 0);
  }
}

