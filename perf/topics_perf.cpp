// rill_topics_perf: many topics on one endpoint. What an idle topic costs in memory, and
// what publishing on one topic costs with N idle topics beside it, against the same
// endpoint carrying that one topic alone, measured in the same run.
//
//   rill_topics_perf [--transport tcp|shm] [--topics N] [--count M] [--rounds R] [--json FILE]
//
// Each round runs both sides, alternating which goes first: an endpoint with the hot topic
// alone, and one with N idle topics ("idle/<i>") created first. A subscriber with prefix
// "hot/" drains on a thread of its own; a second subscriber's prefix matches exactly one
// idle topic, which then publishes 100 messages. Checked every round: the hot subscriber
// receives exactly the M hot messages (no gap, nothing of another topic), and the other
// exactly the 100 of its topic. Reported: publish rate on the hot topic (medians), their
// ratio, and memory per idle topic: heap in use (glibc mallinfo2) and resident growth while
// the N were created, each divided by N (resident growth is 0 once freed memory is reused).
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "perf_programs.hpp"
#include "rill/rill.hpp"

using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

using rill::perf_programs::arg;
using rill::perf_programs::median;

std::string g_transport = "tcp";

std::string fresh_endpoint() {
  static unsigned k = 0;
  ++k;
  if (g_transport == "shm") return "shm://rill-topics-perf-" + std::to_string(getpid()) + "-" + std::to_string(k);
  return rill::perf_programs::free_tcp_endpoint();
}

std::size_t resident_bytes() {
  std::ifstream f("/proc/self/statm");
  std::size_t total = 0, resident = 0;
  f >> total >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

std::size_t heap_bytes() { return mallinfo2().uordblks; }

struct Side {
  double rate = 0;               // hot publishes per second
  double bytes_per_idle = 0;     // RSS growth per idle topic
  double heap_per_idle = 0;      // heap in use per idle topic (glibc mallinfo2)
  bool ok = false;               // every check held
  std::string why;               // the first check that did not
};

bool fail(Side& s, std::string why) {
  if (s.ok || s.why.empty()) s.why = std::move(why);
  s.ok = false;
  return false;
}

// Drives until `done` or 30 s; false on timeout. (A quiet shm publisher takes new
// subscriptions in at its next publish or service(): README, Not done yet.)
template <class Done>
bool drive(rill::Subscriber& sub, rill::Publisher& pub, Done done) {
  const auto deadline = clk::now() + 30s;
  while (!done()) {
    if (clk::now() > deadline) return false;
    (void)pub.service();
    sub.wait_poll([](const rill::MessageView&) {}, 0, 1ms);
  }
  return true;
}

Side run(std::size_t idle_topics, std::uint64_t count) {
  Side side;
  side.ok = true;
  rill::Node node;
  const auto ep = fresh_endpoint();
  auto hot = node.publisher({.endpoint = ep, .topic = "hot/x", .publish_timeout = 10s});
  if (!hot) {
    fail(side, "hot publisher: " + hot.error().message());
    return side;
  }
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = "hot/", .policy = rill::Policy::backpressure(1024)});
  const std::size_t pick = idle_topics / 2;
  auto one = node.subscriber({.endpoints = {ep}, .prefix = "idle/" + std::to_string(pick) + "$"});
  if (!sub || !one) {
    fail(side, "subscriber");
    return side;
  }
  if (!drive(*sub, *hot, [&] { return sub->stats().publishers == 1; })) fail(side, "hot subscriber never welcomed");
  const auto before = resident_bytes();
  const auto heap_before = heap_bytes();
  std::vector<rill::Publisher> idle;
  idle.reserve(idle_topics);
  for (std::size_t i = 0; i < idle_topics; ++i) {
    // The trailing '$' keeps "idle/12$" from matching "idle/123$" as a prefix.
    auto p = node.publisher({.endpoint = ep, .topic = "idle/" + std::to_string(i) + "$"});
    if (!p) {
      fail(side, "idle publisher " + std::to_string(i) + ": " + p.error().message());
      return side;
    }
    idle.push_back(std::move(*p));
  }
  if (idle_topics > 0) {
    side.bytes_per_idle = (static_cast<double>(resident_bytes()) - before) / idle_topics;
    side.heap_per_idle = (static_cast<double>(heap_bytes()) - heap_before) / idle_topics;
  }

  // The hot topic, drained on a thread of its own.
  std::atomic<std::uint64_t> got{0}, foreign{0};
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    std::uint64_t expected = 1;
    while (!stop.load(std::memory_order_relaxed)) {
      sub->wait_poll(
          [&](const rill::MessageView& m) {
            if (m.topic() != "hot/x" || m.sequence() != expected) foreign.fetch_add(1, std::memory_order_relaxed);
            expected = m.sequence() + 1;
            got.fetch_add(1, std::memory_order_relaxed);
          },
          256, 1ms);
    }
  });
  const auto t0 = clk::now();
  for (std::uint64_t i = 0; i < count; ++i) {
    if (!hot->publish_text("m")) {
      fail(side, "hot publish failed");
      break;
    }
  }
  hot->flush();
  const double seconds = std::chrono::duration<double>(clk::now() - t0).count();
  side.rate = count / seconds;
  const auto deadline = clk::now() + 30s;
  while (got.load() < count && clk::now() < deadline) std::this_thread::sleep_for(1ms);
  stop = true;
  reader.join();
  if (got.load() != count) fail(side, "hot subscriber got " + std::to_string(got.load()) + " of " + std::to_string(count));
  if (foreign.load() != 0) fail(side, "hot subscriber saw another topic or a gap");
  if (sub->stats().gaps != 0) fail(side, "hot subscriber counted gaps");

  // One idle topic speaks: only its subscriber hears it, all of it.
  if (idle_topics > 0) {
    if (!drive(*one, idle[pick], [&] { return one->stats().publishers == 1; })) {
      fail(side, "the one-topic subscriber was never greeted");
    }
    for (int i = 0; i < 100; ++i) (void)idle[pick].publish_text("i");
    std::uint64_t mine = 0, other = 0;
    const auto until = clk::now() + 10s;
    while (mine < 100 && clk::now() < until) {
      one->wait_poll(
          [&](const rill::MessageView& m) {
            if (m.topic() == "idle/" + std::to_string(pick) + "$") {
              ++mine;
            } else {
              ++other;
            }
          },
          256, 1ms);
    }
    if (mine != 100 || other != 0 || one->stats().gaps != 0) fail(side, "the one-topic subscriber's messages were wrong");
  }
  return side;
}

}  // namespace

int main(int argc, char** argv) {
  g_transport = arg(argc, argv, "--transport", "tcp");
  const auto topics = std::stoul(arg(argc, argv, "--topics", g_transport == "shm" ? "255" : "10000"));
  const auto count = std::stoull(arg(argc, argv, "--count", "200000"));
  const auto rounds = std::stoul(arg(argc, argv, "--rounds", "3"));
  const std::string json = arg(argc, argv, "--json", "");
  std::vector<double> alone, beside, per_idle, heap_per_idle;
  bool ok = true;
  for (unsigned r = 0; r < rounds; ++r) {
    Side a, b;
    if (r % 2 == 0) {
      a = run(0, count);
      b = run(topics, count);
    } else {
      b = run(topics, count);
      a = run(0, count);
    }
    for (const auto* s : {&a, &b}) {
      if (!s->ok) {
        std::fprintf(stderr, "round %u: %s\n", r + 1, s->why.c_str());
        ok = false;
      }
    }
    alone.push_back(a.rate);
    beside.push_back(b.rate);
    per_idle.push_back(b.bytes_per_idle);
    heap_per_idle.push_back(b.heap_per_idle);
    std::printf(
        "round %u: one topic alone %.0f msgs/s, beside %lu idle topics %.0f msgs/s (ratio %.3f); per idle topic %.0f B "
        "heap, %.0f B resident growth\n",
        r + 1, a.rate, topics, b.rate, b.rate / a.rate, b.heap_per_idle, b.bytes_per_idle);
  }
  const double ratio = median(beside) / median(alone);
  std::printf("%s: %lu topics on one endpoint: median ratio %.3f, median %.0f B heap per idle topic%s\n",
              g_transport.c_str(), topics, ratio, median(heap_per_idle), ok ? "" : " (CHECKS FAILED)");
  if (!json.empty()) {
    std::ofstream out(json);
    out << "{\"transport\":\"" << g_transport << "\",\"topics\":" << topics << ",\"count\":" << count
        << ",\"rounds\":" << rounds << ",\"alone_msgs_s\":[";
    for (std::size_t i = 0; i < alone.size(); ++i) out << (i ? "," : "") << alone[i];
    out << "],\"beside_msgs_s\":[";
    for (std::size_t i = 0; i < beside.size(); ++i) out << (i ? "," : "") << beside[i];
    out << "],\"bytes_per_idle_topic\":[";
    for (std::size_t i = 0; i < per_idle.size(); ++i) out << (i ? "," : "") << per_idle[i];
    out << "],\"heap_bytes_per_idle_topic\":[";
    for (std::size_t i = 0; i < heap_per_idle.size(); ++i) out << (i ? "," : "") << heap_per_idle[i];
    out << "],\"ratio_median\":" << ratio << ",\"checks_ok\":" << (ok ? "true" : "false") << "}\n";
  }
  return ok ? 0 : 1;
}
