// The rill side of `rill perf shm`: ping-pong and stream through shm Publisher and
// Subscriber, building every message in a loan (zero copy) as a user would.
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "perf_kit.hpp"
#include "perf_rill.hpp"
#include "rill/rill.hpp"

namespace rill::cli {

namespace {

using clock = std::chrono::steady_clock;
using perf::Link;
using perf::PerfOptions;

constexpr std::byte tag_ping{'P'}, tag_quit{'Q'}, tag_probe{'H'}, tag_data{'D'};

std::byte tag_of(const MessageView& m) { return m.payload().empty() ? std::byte{0} : m.payload()[0]; }

// Segment names unique to this run: the parent's pid (the child asks for its parent's).
std::string endpoint(pid_t parent, const char* what) {
  return "shm://rillperf-" + std::to_string(parent) + "-" + what;
}

// A message of `size` payload bytes built in place; only the tag byte is written (the
// rest is the chunk's old contents), so the cost measured is rill's, not a memset.
Result<void> send_tagged(Publisher& pub, std::size_t size, std::byte tag) {
  auto loan = pub.loan(size);
  if (!loan) return std::unexpected(loan.error());
  auto bytes = loan->raw(std::max<std::size_t>(size, 1));
  bytes[0] = tag;
  return pub.publish(std::move(*loan));
}

// Spin mode polls without pause (shm has no I/O thread that would need the core),
// except with both sides on one core, where each yields to the other like the baseline.
std::size_t wait_some(Subscriber& sub, const PerfOptions& o, Subscriber::Handler h, std::size_t limit,
                      std::chrono::nanoseconds timeout) {
  if (o.idle == perf::Idle::block) return sub.wait_poll(h, limit, timeout);
  const auto deadline = clock::now() + timeout;
  const bool yield = o.placement == perf::Placement::same;
  for (unsigned i = 0;; ++i) {
    if (const auto n = sub.poll(h, limit); n > 0) return n;
    if (yield) sched_yield();
    if ((i & 1023) == 0 && clock::now() >= deadline) return 0;
  }
}

IdleStrategy idle_of(const PerfOptions& o) { return o.idle == perf::Idle::spin ? IdleStrategy::spin : IdleStrategy::block; }

int echo(const PerfOptions& o, const Link& link) {
  Node node;
  auto pub = node.publisher({.endpoint = endpoint(::getppid(), "pong"), .topic = "perf/pong"});
  auto sub = node.subscriber({.endpoints = {endpoint(::getppid(), "ping")}, .prefix = "perf/ping", .idle = idle_of(o)});
  if (!pub || !sub) return 1;
  link.ready();
  bool quit = false;
  auto last = clock::now();
  while (!quit) {
    const auto n = wait_some(*sub, o, [&](const MessageView& m) {
      if (tag_of(m) == tag_quit) {
        quit = true;
        return;
      }
      (void)send_tagged(*pub, m.payload().size(), tag_of(m));
    }, 1, std::chrono::milliseconds(100));
    if (n > 0) {
      last = clock::now();
    } else {
      pub->service();
      if (clock::now() - last > std::chrono::milliseconds(o.step_timeout_ms * 4)) return 1;  // the pinger is gone
    }
  }
  return 0;
}

std::expected<std::vector<std::uint64_t>, std::string> ping(const PerfOptions& o, const Link& link) {
  Node node;
  auto pub = node.publisher({.endpoint = endpoint(::getpid(), "ping"), .topic = "perf/ping"});
  if (!pub) return std::unexpected("rill ping: " + pub.error().message());
  while (link.peer() == perf::Peer::starting) pub->service();
  auto sub = node.subscriber({.endpoints = {endpoint(::getpid(), "pong")}, .prefix = "perf/pong", .idle = idle_of(o)});
  if (!sub) return std::unexpected("rill ping: " + sub.error().message());
  const auto step = std::chrono::milliseconds(o.step_timeout_ms);
  if (auto w = pub->wait_for_subscribers(1, step); !w) return std::unexpected("rill ping: " + w.error().message());
  bool got = false;
  const auto on_pong = [&](const MessageView&) { got = true; };
  const auto hello_deadline = clock::now() + step;
  while (!got) {  // until our subscription to the pong segment is live end to end
    if (clock::now() > hello_deadline) return std::unexpected("rill ping: no pong within the step timeout");
    (void)send_tagged(*pub, o.size, tag_ping);
    sub->wait_poll(on_pong, 1, std::chrono::milliseconds(10));
  }
  while (sub->wait_poll(on_pong, 64, std::chrono::milliseconds(20)) > 0) {
  }
  std::vector<std::uint64_t> samples;
  samples.reserve(o.count);
  for (std::size_t i = 0; i < o.warmup + o.count; ++i) {
    got = false;
    const auto t0 = clock::now();
    if (auto r = send_tagged(*pub, o.size, tag_ping); !r) return std::unexpected("rill ping: " + r.error().message());
    while (!got) {
      if (wait_some(*sub, o, on_pong, 1, step) == 0 && !got) return std::unexpected("rill ping: pong lost");
    }
    if (i >= o.warmup) samples.push_back(static_cast<std::uint64_t>((clock::now() - t0).count()));
  }
  (void)send_tagged(*pub, 1, tag_quit);
  return samples;
}

std::expected<void, std::string> send(const PerfOptions& o, const Link& link) {
  Node node;
  auto pub = node.publisher({.endpoint = endpoint(::getpid(), "stream"),
                             .topic = "perf/stream",
                             .publish_timeout = std::chrono::milliseconds(o.step_timeout_ms)});
  if (!pub) return std::unexpected("rill send: " + pub.error().message());
  const auto deadline = clock::now() + std::chrono::milliseconds(o.step_timeout_ms);
  while (link.peer() != perf::Peer::ready) {  // probes until the receiver has seen one
    if (link.peer() == perf::Peer::gone || clock::now() > deadline) return std::unexpected("rill send: receiver never ready");
    if (pub->wait_for_subscribers(1, std::chrono::milliseconds(5))) (void)send_tagged(*pub, o.size, tag_probe);
  }
  for (std::size_t i = 0; i < o.throughput_count; ++i) {
    if (auto r = send_tagged(*pub, o.size, tag_data); !r) return std::unexpected("rill send: " + r.error().message());
  }
  (void)send_tagged(*pub, o.size, tag_quit);
  while (link.peer() == perf::Peer::ready) pub->service();
  return {};
}

std::expected<std::pair<double, std::uint64_t>, std::string> receive(const PerfOptions& o, const Link& link) {
  Node node;
  // The drop policy the issue names: the publisher never waits for this subscriber.
  auto sub = node.subscriber({.endpoints = {endpoint(::getppid(), "stream")},
                              .prefix = "perf/stream",
                              .policy = Policy::drop_oldest(1024),
                              .idle = idle_of(o)});
  if (!sub) return std::unexpected("rill receive: " + sub.error().message());
  std::uint64_t got = 0;
  clock::time_point first{}, last{};
  bool announced = false, done = false;
  const auto handler = [&](const MessageView& m) {
    const auto tag = tag_of(m);
    if (tag == tag_quit) done = true;
    if (tag != tag_data) return;
    if (got++ == 0) first = clock::now();
  };
  while (!done) {
    const auto n = wait_some(*sub, o, handler, 1024, std::chrono::milliseconds(o.step_timeout_ms));
    if (!announced && sub->stats().received > 0) {
      link.ready();
      announced = true;
    }
    if (n == 0) break;
    last = clock::now();
  }
  if (got < 2) return std::unexpected("rill receive: stream did not arrive");
  const double secs = std::chrono::duration<double>(last - first).count();
  // Every data message the handler did not see was dropped by the policy (counted as gaps).
  return std::pair{static_cast<double>(got - 1) / secs, static_cast<std::uint64_t>(o.throughput_count - got)};
}

}  // namespace

perf::PingPongRunner rill_shm_pingpong() { return {.name = "rill", .echo = echo, .ping = ping}; }
perf::ThroughputRunner rill_shm_throughput() { return {.name = "rill", .send = send, .receive = receive}; }

}  // namespace rill::cli
