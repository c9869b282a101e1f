// A hung subscriber: a real `rill sub` process stopped with SIGSTOP (alive, connected, silent)
// while this process publishes to it under backpressure, then continued with SIGCONT.
//   tcp, reliable udp: publish() really waits on it (timeouts, the publisher names it as its
//     blocker); after the keepalive time (3 s without its keepalive / STATUS) the publisher
//     drops it (stats: left), and publishing goes on without waiting. On SIGCONT it comes
//     back as a new subscription of the same publisher, and what was published while it was
//     dropped is reported as its gap (tcp; over udp the multicast datagrams still reached its
//     socket buffer, so it may have none): received + gaps == everything published.
//   shm: the stopped process is alive (liveness is by pid), so it is never dropped: publish()
//     times out on it, never skips it, and after SIGCONT it receives every message, no gap.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <string>

#include "process.hpp"
#include "rill/rill.hpp"

namespace {

using namespace rill::e2e;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int window = 32;

// The highest "seq" the subscriber printed so far (its output is one JSON object a line).
std::uint64_t last_seq_printed(const Process& sub) {
  std::uint64_t last = 0;
  const std::string out = sub.out();  // lines() views into it: it must outlive the loop
  for (auto line : lines(out)) {
    if (auto s = json_u64(line, "seq")) last = std::max(last, *s);
  }
  return last;
}

// Publishes `n` messages that must each go through at once (nobody is holding the publisher).
void publish_freely(rill::Publisher& pub, int n) {
  const auto timeouts = pub.stats().timeouts;
  for (int i = 0; i < n; ++i) {
    auto r = pub.publish_text("m" + std::to_string(pub.next_sequence()));
    REQUIRE_MESSAGE(r.has_value(), r.error().message());
  }
  CHECK(pub.stats().timeouts == timeouts);
}

struct Outcome {
  std::uint64_t timeouts = 0;  // publish() calls that hit their deadline while it was stopped
  std::chrono::milliseconds dropped_after{-1};  // SIGSTOP to the publisher dropping it (-1: never)
};

// Stops the subscriber and publishes into it until the publisher drops it or `for_at_most`.
Outcome stop_and_publish(rill::Publisher& pub, Process& sub, std::chrono::milliseconds for_at_most) {
  Outcome o;
  const auto left = pub.stats().left;
  const auto timeouts = pub.stats().timeouts;
  sub.kill(SIGSTOP);
  const auto stopped = Clock::now();
  while (Clock::now() - stopped < for_at_most) {
    auto r = pub.publish_text("m" + std::to_string(pub.next_sequence()));
    if (!r) REQUIRE_MESSAGE(r.error().code == rill::Errc::timed_out, r.error().message());
    if (pub.stats().left > left) {
      o.dropped_after = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - stopped);
      break;
    }
  }
  o.timeouts = pub.stats().timeouts - timeouts;
  return o;
}

// Ends the subscriber (SIGTERM: it prints its stats) once it printed `last`.
Stats finish(Process& sub, std::uint64_t last) {
  CHECK_MESSAGE(wait_until([&] { return last_seq_printed(sub) >= last; }, 15s),
                "the subscriber printed up to seq " << last_seq_printed(sub) << ", not " << last);
  sub.kill(SIGTERM);
  const auto st = sub.wait(10s);
  CHECK_MESSAGE(st.ok(), st.describe() << "\n" << sub.err());
  return parse_stats(sub.out());
}

// tcp and reliable udp: dropped after the keepalive time, back as a new subscription on SIGCONT.
// `gap_expected`: tcp sends a dropped subscription nothing; multicast datagrams still reach
// the stopped process's socket buffer (and its NAKs repair what overflowed, within the
// publisher's window), so over udp the drop releases the publisher without costing a gap.
void dropped_and_back(const std::string& endpoint, bool gap_expected) {
  TempDir dir;
  rill::Node node;
  auto pub = node.publisher({.endpoint = endpoint, .topic = "hung/x", .publish_timeout = 100ms});
  REQUIRE_MESSAGE(pub.has_value(), pub.error().message());
  auto sub = spawn_rill(dir, "sub",
                        {"sub", endpoint, "hung/", "--policy", "backpressure:" + std::to_string(window), "--format",
                         "json", "--idle-exit-ms", "60000"});
  REQUIRE_MESSAGE(wait_until(
                      [&] {
                        pub->service();
                        return pub->stats().subscribers == 1;
                      },
                      10s),
                  "the subscriber never attached\n" << sub->err());
  publish_freely(*pub, 50);
  REQUIRE(wait_until([&] { return last_seq_printed(*sub) >= 50; }, 10s));

  const auto o = stop_and_publish(*pub, *sub, 10s);
  MESSAGE(endpoint << ": stopped subscriber dropped after " << o.dropped_after.count() << " ms, " << o.timeouts
                   << " publish() timeouts before that, last blocker " << pub->stats().last_blocker);
  CHECK_MESSAGE(o.timeouts > 0, "publish() never waited on the stopped backpressure subscriber");
  CHECK(pub->stats().last_blocker != 0);
  REQUIRE_MESSAGE(o.dropped_after.count() >= 0, "the stopped subscriber was never dropped");
  // The keepalive time is 3 s: not before about then, not much after.
  CHECK(o.dropped_after >= 2500ms);
  CHECK(o.dropped_after <= 6000ms);
  CHECK(pub->stats().subscribers == 0);
  publish_freely(*pub, 100);  // the backpressure is released

  sub->kill(SIGCONT);
  const auto joined = pub->stats().joined;
  REQUIRE_MESSAGE(wait_until(
                      [&] {
                        pub->service();
                        return pub->stats().joined > joined && pub->stats().subscribers == 1;
                      },
                      10s),
                  "the continued subscriber did not come back");
  publish_freely(*pub, 50);
  const std::uint64_t last = pub->next_sequence() - 1;
  const auto st = finish(*sub, last);
  REQUIRE_MESSAGE(st.found, sub->out());
  MESSAGE("received " << st["received"] << ", gaps " << st["gaps"] << " of " << last);
  CHECK(st["received"] + st["gaps"] == last);
  if (gap_expected) {
    CHECK_MESSAGE(st["gaps"] >= 100, "the messages published while it was dropped are not its gap");
  }
  CHECK(st["received"] >= 100);  // before the stop and after its return
}

}  // namespace

TEST_CASE("tcp: a stopped backpressure subscriber holds publish(), is dropped after 3 s, and comes back with its gap") {
  dropped_and_back(tcp_endpoint(free_port()), true);
}

TEST_CASE("udp reliable: a stopped subscriber holds publish(), is dropped after 3 s, and comes back") {
  static int k = 0;
  const auto pid = static_cast<unsigned>(::getpid());
  dropped_and_back("udp://239.253." + std::to_string(pid % 250) + "." + std::to_string(++k) + ":" +
                   std::to_string(free_port()) + "?iface=127.0.0.1&reliable=1",
                   false);
}

TEST_CASE("shm: a stopped subscriber is alive, so publish() times out on it and it misses nothing") {
  TempDir dir;
  const std::string endpoint = "shm://rill-hung-" + std::to_string(::getpid());
  rill::Node node;
  auto pub = node.publisher({.endpoint = endpoint, .topic = "hung/x", .publish_timeout = 100ms});
  REQUIRE_MESSAGE(pub.has_value(), pub.error().message());
  auto sub = spawn_rill(dir, "sub",
                        {"sub", endpoint, "hung/", "--policy", "backpressure:" + std::to_string(window), "--format",
                         "json", "--idle-exit-ms", "60000"});
  REQUIRE_MESSAGE(wait_until(
                      [&] {
                        pub->service();
                        return pub->stats().subscribers == 1;
                      },
                      10s),
                  "the subscriber never attached\n" << sub->err());
  publish_freely(*pub, 50);
  REQUIRE(wait_until([&] { return last_seq_printed(*sub) >= 50; }, 10s));

  const auto o = stop_and_publish(*pub, *sub, 4s);
  MESSAGE("shm: " << o.timeouts << " publish() timeouts in 4 s on the stopped subscriber");
  CHECK(o.dropped_after.count() < 0);  // never dropped: it is alive
  CHECK(o.timeouts > 10);
  CHECK(pub->stats().last_blocker != 0);
  CHECK(pub->stats().subscribers == 1);

  sub->kill(SIGCONT);
  // It drains what it was sent; then nothing holds the publisher any more.
  std::uint64_t sent_before = pub->next_sequence() - 1;
  REQUIRE(wait_until([&] { return last_seq_printed(*sub) >= sent_before; }, 10s));
  publish_freely(*pub, 50);
  const std::uint64_t last = pub->next_sequence() - 1;
  const auto st = finish(*sub, last);
  REQUIRE_MESSAGE(st.found, sub->out());
  CHECK(st["received"] == last);
  CHECK(st["gaps"] == 0);
}
