// transient_local over tcp, shm and reliable udp multicast: a subscriber joining a
// publisher that runs at full rate gets exactly the last N messages published before its
// join, then live ones, with no gap and no duplicate at the seam. In process (to pin the
// join to a sequence) and as processes.
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "durable_util.hpp"
#include "rill/rill.hpp"

namespace rill::e2e {

namespace {

constexpr std::size_t kept = 1000;

// Sequences delivered are one contiguous run [first, last]; returns the number of breaks.
std::size_t breaks(const std::vector<std::uint64_t>& seqs) {
  std::size_t n = 0;
  for (std::size_t i = 1; i < seqs.size(); ++i) n += seqs[i] != seqs[i - 1] + 1;
  return n;
}

std::string shm_endpoint(const char* what) {
  return "shm://rill-seam-" + std::string(what) + "-" + std::to_string(::getpid());
}

void seam_in_process(const std::string& ep) {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> published{0};    // next_sequence() - 1, as the thread goes
  std::atomic<std::uint64_t> join_before{0};  // next_sequence() before the publish() in which the join showed
  std::atomic<std::uint64_t> join_after{0};   // ... and after it
  std::atomic<std::uint64_t> last_seq{0};
  std::atomic<bool> failed{false};
  std::atomic<bool> ready{false};

  std::thread publisher([&] {
    Node node;
    auto pub = node.publisher({.endpoint = ep, .topic = "seam/t", .durability = Durability::transient_local(kept)});
    if (!pub) {
      failed = true;
      ready = true;
      return;
    }
    ready = true;
    std::string payload;
    while (!stop.load(std::memory_order_relaxed)) {
      const auto joined = pub->stats().joined;
      const auto before = pub->next_sequence();
      payload = "seam " + std::to_string(before);
      auto r = pub->publish_text(payload);
      if (!r && r.error().code != Errc::timed_out) {
        failed = true;
        break;
      }
      if (joined == 0 && pub->stats().joined == 1) {  // the join was processed inside this publish()
        join_before = before;
        join_after = pub->next_sequence();
      }
      published.store(pub->next_sequence() - 1, std::memory_order_relaxed);
    }
    last_seq = pub->next_sequence() - 1;
    // Let the subscriber drain what it is owed (backpressure) before the publisher goes.
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (pub->stats().subscribers > 0 && std::chrono::steady_clock::now() < until && !failed) {
      pub->service();
      std::this_thread::sleep_for(1ms);
    }
  });
  REQUIRE(wait_until([&] { return ready.load(); }, 30s));
  REQUIRE_FALSE(failed.load());
  // Join mid-stream: well past the first N, so the history ring is full.
  REQUIRE(wait_until([&] { return published.load() >= 20 * kept; }, 60s));

  Node node;
  std::vector<std::uint64_t> seqs;
  seqs.reserve(1u << 20);
  {
    auto sub = node.subscriber({.endpoints = {ep},
                                .prefix = "seam/",
                                .policy = Policy::backpressure(1024),
                                .durability = Durability::transient_local(0)});
    REQUIRE(sub.has_value());
    const auto handler = [&](const MessageView& m) { seqs.push_back(m.sequence()); };
    // Enough live messages after the seam, then stop the publisher and take the rest.
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (seqs.size() < 5 * kept + 20'000 && std::chrono::steady_clock::now() < deadline) {
      sub->wait_poll(handler, 256, 5ms);
    }
    stop = true;
    while (std::chrono::steady_clock::now() < deadline &&
           (last_seq.load() == 0 || seqs.empty() || seqs.back() < last_seq.load())) {
      sub->wait_poll(handler, 256, 5ms);
    }
    CHECK(sub->stats().gaps == 0);
    CHECK(sub->stats().duplicates == 0);
    CHECK(sub->stats().dropped == 0);
    stop = true;
  }
  publisher.join();
  REQUIRE_FALSE(failed.load());
  REQUIRE_FALSE(seqs.empty());
  INFO("first " << seqs.front() << ", last " << seqs.back() << ", published " << last_seq.load()
                << ", join seen between " << join_before.load() << " and " << join_after.load());
  MESSAGE("late joiner: seqs " << seqs.front() << ".." << seqs.back() << ", join seen in the publish of seq "
                               << join_before.load());
  CHECK(breaks(seqs) == 0);  // contiguous: no gap, no duplicate, in order
  CHECK(seqs.back() == last_seq.load());
  // A real late joiner, and its history was exactly N: the welcome's next_seq (the first
  // live message) is the seq of the publish() in which the join was seen, or the next one.
  REQUIRE(join_before.load() > 0);
  CHECK(seqs.front() > 1);
  CHECK(seqs.front() + kept >= join_before.load());
  CHECK(seqs.front() + kept <= join_after.load());
}

void seam_processes(const std::string& ep) {
  auto dir = shm_temp_dir();
  // A publisher with no pacing and far more to send than the test needs: it is stopped
  // (SIGTERM) once the late joiner has seen enough live messages.
  auto pub = spawn_rill(dir, "pub",
                        {"pub", ep, "seam/p", "--durability", "transient-local:1000", "--count", "1000000000",
                         "--wait-subs", "1", "--linger-ms", "30000"});
  // A first, volatile subscriber that proves the publisher is under way.
  auto early = spawn_rill(dir, "early", {"sub", ep, "seam/", "--count", "20000"});
  REQUIRE(early->wait(60s).ok());
  auto late = spawn_rill(dir, "late",
                         {"sub", ep, "seam/", "--durability", "transient-local", "--policy", "backpressure:1024",
                          "--idle-exit-ms", "3000"});
  REQUIRE(wait_until([&] { return lines(late->out()).size() >= 30'000 || !late->running(); }, 120s));
  REQUIRE(pub->running());
  pub->kill(SIGTERM);
  const auto pe = pub->wait(60s);
  INFO("pub: " << pub->err());
  REQUIRE(pe.ok());
  const auto le = late->wait(60s);
  INFO("late: " << late->err());
  REQUIRE(le.ok());
  const auto got = parse_delivered(late->out());
  REQUIRE(got.bad == 0);
  REQUIRE(got.messages.size() >= 30'000);
  std::vector<std::uint64_t> seqs;
  for (const auto& m : got.messages) seqs.push_back(m.seq);
  const auto pub_last = json_u64(first_line_with(pub->err(), "{\"stats\":"), "last_seq");
  INFO("late joiner first " << seqs.front() << " last " << seqs.back());
  CHECK(breaks(seqs) == 0);
  CHECK(seqs.front() > 1);
  CHECK(pub_last == seqs.back());  // live to the very end
  const auto st = parse_stats(late->out());
  CHECK(st["gaps"] == 0);
  CHECK(st["received"] == seqs.size());
}

}  // namespace

TEST_CASE("transient_local: a late joiner gets exactly the last N before its join, then live, no gap, no duplicate") {
  seam_in_process(tcp_endpoint(free_port()));
}

TEST_CASE(
    "transient_local between processes: a late `rill sub` gets history then live, contiguous, while `rill pub` runs "
    "flat out") {
  seam_processes(tcp_endpoint(free_port()));
}

// The same over shared memory: the history is copied into the late joiner's ring.
TEST_CASE("shm seam: a late joiner gets exactly the last N before its join, then live, no gap, no duplicate") {
  seam_in_process(shm_endpoint("thread"));
}

TEST_CASE("shm seam between processes: a late `rill sub` gets history then live while `rill pub` runs flat out") {
  seam_processes(shm_endpoint("proc"));
}

TEST_CASE(
    "udp transient_local: a late joiner gets exactly the last N before its join, then live, no gap, no duplicate") {
  seam_in_process(udp_endpoint());
}

TEST_CASE(
    "udp transient_local between processes: a late `rill sub` gets history then live, contiguous, while `rill pub` "
    "runs flat out") {
  seam_processes(udp_endpoint());
}

}  // namespace rill::e2e
