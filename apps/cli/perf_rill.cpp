// The rill side of `rill perf tcp`: the same ping-pong and stream as the raw
// baselines, through Publisher and Subscriber on the caller's thread.
#include <chrono>
#include <cstring>
#include <sched.h>
#include <string>

#include "perf_kit.hpp"
#include "perf_rill.hpp"
#include "rill/rill.hpp"

namespace rill::cli {

namespace {

using clock = std::chrono::steady_clock;
using perf::Link;
using perf::PerfOptions;

// Rill runs on its own ports, apart from the raw baselines' base_port .. base_port + 19.
// udp: a multicast group per direction on 127.0.0.1, with the runner's query (mode, mtu).
std::string endpoint(const PerfOptions& o, int offset, const std::string& udp_query) {
  const auto port = std::to_string(o.base_port + 20 + offset);
  if (o.transport == "udp") {
    return "udp://239.255.77." + std::to_string(offset + 1) + ":" + port + "?iface=127.0.0.1&" + udp_query;
  }
  return "tcp://127.0.0.1:" + port;
}

IdleStrategy idle_of(const PerfOptions& o) { return o.idle == perf::Idle::spin ? IdleStrategy::spin : IdleStrategy::block; }

// Byte 0 of every payload says what it is.
constexpr std::byte tag_ping{'P'}, tag_quit{'Q'}, tag_probe{'H'}, tag_data{'D'};

std::byte tag_of(const MessageView& m) { return m.payload().empty() ? std::byte{0} : m.payload()[0]; }

// Waits for one message the way the raw baseline does: with --idle spin it polls and
// yields between polls (each side's ZeroMQ I/O thread shares its pinned core, so a
// pure spin would starve it); with --idle block it sleeps in zmq_poll.
std::size_t wait_some(Subscriber& sub, const PerfOptions& o, Subscriber::Handler h, std::size_t limit,
                      std::chrono::nanoseconds timeout) {
  if (o.idle == perf::Idle::block) return sub.wait_poll(h, limit, timeout);
  const auto deadline = clock::now() + timeout;
  // The deadline is looked at every 64 polls, as the raw baselines do: a clock read per
  // pass would lengthen the very loop whose reaction time is measured.
  for (unsigned spins = 1;; ++spins) {
    if (const auto n = sub.poll(h, limit); n > 0) return n;
    if ((spins & 63U) == 0 && clock::now() >= deadline) return 0;
    sched_yield();
  }
}


int echo(const PerfOptions& o, const Link& link, const std::string& q) {
  Node node;
  auto pub = node.publisher({.endpoint = endpoint(o, 1, q), .topic = "perf/pong"});
  auto sub = node.subscriber({.endpoints = {endpoint(o, 0, q)}, .prefix = "perf/ping", .idle = idle_of(o)});
  if (!pub || !sub) return 1;
  link.ready();
  bool quit = false;
  auto last = clock::now();
  while (!quit) {
    const auto n = wait_some(
        *sub, o,
        [&](const MessageView& m) {
          if (tag_of(m) == tag_quit) {
            quit = true;
            return;
          }
          (void)pub->publish_bytes(m.payload());
        },
        1, std::chrono::milliseconds(100));
    if (n > 0) {
      last = clock::now();
    } else if (clock::now() - last > std::chrono::milliseconds(o.step_timeout_ms * 4)) {
      return 1;  // the pinger is gone
    }
  }
  return 0;
}

std::expected<std::vector<std::uint64_t>, std::string> ping(const PerfOptions& o, const Link& link, const std::string& q) {
  Node node;
  auto pub = node.publisher({.endpoint = endpoint(o, 0, q), .topic = "perf/ping"});
  if (!pub) return std::unexpected("rill ping: " + pub.error().message());
  auto sub = node.subscriber({.endpoints = {endpoint(o, 1, q)}, .prefix = "perf/pong", .idle = idle_of(o)});
  if (!sub) return std::unexpected("rill ping: " + sub.error().message());
  const auto step = std::chrono::milliseconds(o.step_timeout_ms);
  while (link.peer() == perf::Peer::starting) pub->service();
  if (auto w = pub->wait_for_subscribers(1, step); !w) return std::unexpected("rill ping: " + w.error().message());
  std::vector<std::byte> payload(std::max<std::size_t>(o.size, 1), std::byte{'x'});
  payload[0] = tag_ping;
  bool got = false;
  const auto on_pong = [&](const MessageView&) { got = true; };
  // The echo's publisher learns about us asynchronously: ping until the first pong.
  const auto hello_deadline = clock::now() + step;
  while (!got) {
    if (clock::now() > hello_deadline) return std::unexpected("rill ping: no pong within the step timeout");
    (void)pub->publish_bytes(payload);
    sub->wait_poll(on_pong, 1, std::chrono::milliseconds(10));
  }
  while (sub->poll(on_pong, 64) > 0) {
  }
  std::vector<std::uint64_t> samples;
  samples.reserve(o.count);
  for (std::size_t i = 0; i < o.warmup + o.count; ++i) {
    got = false;
    const auto t0 = clock::now();
    if (auto r = pub->publish_bytes(payload); !r) return std::unexpected("rill ping: " + r.error().message());
    while (!got) {
      if (wait_some(*sub, o, on_pong, 1, step) == 0 && !got) return std::unexpected("rill ping: pong lost");
    }
    if (i >= o.warmup) samples.push_back(static_cast<std::uint64_t>((clock::now() - t0).count()));
  }
  payload[0] = tag_quit;
  (void)pub->publish_bytes(payload);
  return samples;
}

std::expected<void, std::string> send(const PerfOptions& o, const Link& link, const std::string& q) {
  Node node;
  auto pub = node.publisher({.endpoint = endpoint(o, 2, q),
                             .topic = "perf/stream",
                             .publish_timeout = std::chrono::milliseconds(o.step_timeout_ms),
                             .batch_messages = o.batch});
  if (!pub) return std::unexpected("rill send: " + pub.error().message());
  std::vector<std::byte> payload(std::max<std::size_t>(o.size, 1), std::byte{'x'});
  payload[0] = tag_probe;
  const auto deadline = clock::now() + std::chrono::milliseconds(o.step_timeout_ms);
  // Probes until the receiver has seen one: its subscription is live end to end.
  while (link.peer() != perf::Peer::ready) {
    if (link.peer() == perf::Peer::gone || clock::now() > deadline) return std::unexpected("rill send: receiver never ready");
    if (pub->wait_for_subscribers(1, std::chrono::milliseconds(5))) {
      (void)pub->publish_bytes(payload);
      pub->flush();
    }
  }
  payload[0] = tag_data;
  for (std::size_t i = 0; i < o.throughput_count; ++i) {
    if (auto r = pub->publish_bytes(payload); !r) return std::unexpected("rill send: " + r.error().message());
  }
  pub->flush();
  while (link.peer() == perf::Peer::ready) pub->service();  // keep answering credits until it is done
  return {};
}

std::expected<std::pair<double, std::uint64_t>, std::string> receive(const PerfOptions& o, const Link& link, const std::string& q) {
  Node node;
  auto sub = node.subscriber({.endpoints = {endpoint(o, 2, q)},
                              .prefix = "perf/stream",
                              .policy = Policy::backpressure(8192),
                              .idle = idle_of(o)});
  if (!sub) return std::unexpected("rill receive: " + sub.error().message());
  std::uint64_t got = 0;
  clock::time_point first{}, last{};
  bool announced = false;
  const auto handler = [&](const MessageView& m) {
    if (tag_of(m) != tag_data) return;
    last = clock::now();
    if (got++ == 0) first = last;
  };
  while (got < o.throughput_count) {
    const auto n = wait_some(*sub, o, handler, 1024, std::chrono::milliseconds(o.step_timeout_ms));
    if (!announced && sub->stats().received > 0) {
      link.ready();
      announced = true;
    }
    if (n == 0) break;
  }
  if (got < 2) return std::unexpected("rill receive: stream did not arrive");
  const double secs = std::chrono::duration<double>(last - first).count();
  return std::pair{static_cast<double>(got - 1) / secs, static_cast<std::uint64_t>(o.throughput_count - got)};
}

}  // namespace

perf::PingPongRunner rill_tcp_pingpong() { return rill_pingpong(""); }
perf::ThroughputRunner rill_tcp_throughput() { return rill_throughput(""); }

perf::PingPongRunner rill_pingpong(const std::string& udp_query) {
  return {.name = "rill",
          .echo = [udp_query](const PerfOptions& o, const Link& l) { return echo(o, l, udp_query); },
          .ping = [udp_query](const PerfOptions& o, const Link& l) { return ping(o, l, udp_query); }};
}
perf::ThroughputRunner rill_throughput(const std::string& udp_query) {
  return {.name = "rill",
          .send = [udp_query](const PerfOptions& o, const Link& l) { return send(o, l, udp_query); },
          .receive = [udp_query](const PerfOptions& o, const Link& l) { return receive(o, l, udp_query); }};
}

}  // namespace rill::cli
