// rill_durable_perf: what durability costs a publisher, and how fast a log replays, each
// beside the same work without durability, measured in the same run.
//
//   rill_durable_perf [--dir DIR] [--count N] [--replay-mib MIB] [--rounds R] [--json FILE] [--transport tcp|udp]
//
// publish  64-byte messages, one publishing thread, with no subscriber and with one draining:
//          persistent with fsync every:10 (log in DIR), the same with direct_io (O_DIRECT
//          writes), and volatile. R alternating rounds of N messages; medians.
// replay   a log of 1 KiB messages (MIB MiB) replayed from the page cache to a durable tcp
//          subscriber (--from start) vs the same messages published live to a subscriber
//          (batches of 256, backpressure window 4096 on both). --transport udp: the same over
//          reliable udp multicast on loopback (mtu 9000).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "perf_programs.hpp"
#include "rill/rill.hpp"

namespace fs = std::filesystem;
using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

using rill::perf_programs::arg;
using rill::perf_programs::median;

std::string g_transport = "tcp";

std::string fresh_endpoint() {
  if (g_transport == "udp") {
    static unsigned k = 0;
    ++k;
    const auto pid = static_cast<unsigned>(getpid());
    return "udp://239.250." + std::to_string(pid % 250) + "." + std::to_string(k % 250 + 1) + ":" +
           std::to_string(36000 + (pid % 3000) * 8 + k % 8) + "?iface=127.0.0.1&mtu=9000";
  }
  return rill::perf_programs::free_tcp_endpoint();
}

[[noreturn]] void die(const std::string& what, const rill::Error& e) {
  std::fprintf(stderr, "rill_durable_perf: %s: %s\n", what.c_str(), e.message().c_str());
  std::exit(1);
}

// Messages per second publishing `count` 64-byte messages; with `subscribed`, one
// drop-oldest subscription drains them on another thread (what it misses is not our business).
double publish_rate(rill::Node& node, const rill::PublisherOptions& opts, std::uint64_t count, bool subscribed) {
  auto pub = node.publisher(opts);
  if (!pub) die("publisher", pub.error());
  std::atomic<bool> stop{false};
  std::thread drain;
  if (subscribed) {
    auto sub = node.subscriber({.endpoints = {opts.endpoint}, .prefix = "perf/"});
    if (!sub) die("subscriber", sub.error());
    drain = std::thread([&stop, s = std::move(*sub)]() mutable {
      while (!stop) s.wait_poll([](const rill::MessageView&) {}, 4096, 1ms);
    });
    if (!pub->wait_for_subscribers(1, 10s)) die("attach", rill::Error{rill::Errc::timed_out, 0, "no subscriber"});
  }
  std::array<std::byte, 64> payload{};
  const auto t0 = clk::now();
  for (std::uint64_t i = 0; i < count; ++i) {
    if (auto r = pub->publish_bytes(payload); !r) die("publish", r.error());
  }
  const double s = std::chrono::duration<double>(clk::now() - t0).count();
  stop = true;
  if (drain.joinable()) drain.join();
  return static_cast<double>(count) / s;
}

// Receives until `last` arrives; returns messages/s from `t0`.
double receive_all(rill::Subscriber& sub, std::uint64_t last, std::uint64_t expect, clk::time_point t0) {
  std::uint64_t got = 0;
  std::uint64_t top = 0;
  const auto deadline = clk::now() + 300s;
  while (top < last && clk::now() < deadline) {
    sub.wait_poll(
        [&](const rill::MessageView& m) {
          ++got;
          top = m.sequence();
        },
        4096, 10ms);
  }
  const double s = std::chrono::duration<double>(clk::now() - t0).count();
  if (got != expect)
    std::fprintf(stderr, "rill_durable_perf: received %llu of %llu\n", static_cast<unsigned long long>(got),
                 static_cast<unsigned long long>(expect));
  return static_cast<double>(got) / s;
}

double live_rate(rill::Node& node, std::uint64_t count, std::size_t size) {
  const auto ep = fresh_endpoint();
  auto pub = node.publisher({.endpoint = ep,
                             .topic = "perf/replay",
                             .publish_timeout = 10s,
                             .batch_messages = 256,
                             .batch_bytes = 256u << 10});
  if (!pub) die("publisher", pub.error());
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = "perf/", .policy = rill::Policy::backpressure(4096)});
  if (!sub) die("subscriber", sub.error());
  std::vector<std::byte> payload(size, std::byte{'p'});
  std::atomic<bool> attached{false};
  clk::time_point t0;
  std::thread publisher([&] {
    if (!pub->wait_for_subscribers(1, 10s)) std::exit(1);
    t0 = clk::now();
    attached = true;
    for (std::uint64_t i = 0; i < count; ++i) {
      if (auto r = pub->publish_bytes(payload); !r) die("live publish", r.error());
    }
    pub->flush();
  });
  // Drive the subscription until the publisher saw it, then time from its first message.
  while (!attached) sub->poll([](const rill::MessageView&) {}, 0);
  const double rate = receive_all(*sub, count, count, t0);
  publisher.join();
  return rate;
}

double replay_rate(rill::Node& node, const fs::path& dir, std::uint64_t count, const std::string& name) {
  const auto ep = fresh_endpoint();
  auto pub = node.publisher({.endpoint = ep,
                             .topic = "perf/replay",
                             .durability = rill::Durability::persistent(dir.string()),
                             .log = {.fsync = rill::FsyncPolicy::never()}});
  if (!pub) die("persistent publisher", pub.error());
  std::atomic<bool> done{false};
  std::thread server([&] {
    while (!done) pub->service();
  });
  const auto t0 = clk::now();
  auto sub = node.subscriber({.endpoints = {ep},
                              .prefix = "perf/",
                              .policy = rill::Policy::backpressure(4096),
                              .durability = rill::Durability::persistent(),
                              .durable_name = name,  // a new one each round: nothing handled yet
                              .from = rill::StartFrom::start,
                              .state_dir = dir.string(),
                              .auto_ack = false});
  if (!sub) die("subscriber", sub.error());
  const double rate = receive_all(*sub, count, count, t0);
  done = true;
  server.join();
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path base = arg(argc, argv, "--dir", "/var/tmp");
  const auto count = std::stoull(arg(argc, argv, "--count", "1000000"));
  const auto replay_mib = std::stoull(arg(argc, argv, "--replay-mib", "1024"));
  const int rounds = std::stoi(arg(argc, argv, "--rounds", "3"));
  const std::string json = arg(argc, argv, "--json", "");
  g_transport = arg(argc, argv, "--transport", "tcp");
  if (g_transport != "tcp" && g_transport != "udp") {
    std::fprintf(stderr, "rill_durable_perf: --transport must be tcp or udp\n");
    return 2;
  }
  const fs::path dir = base / ("rill-durable-perf-" + std::to_string(getpid()));
  fs::remove_all(dir);
  rill::Node node;

  // [0]: no subscriber (the publish path alone), [1]: one subscriber draining.
  std::vector<double> persistent[2], direct[2], volatile_[2];
  for (int r = 0; r < rounds; ++r) {
    for (int subscribed = 0; subscribed < 2; ++subscribed) {
      const auto logdir = dir / ("publish-" + std::to_string(r));
      auto persistent_rate = [&](bool direct_io) {
        const double rate = publish_rate(node,
                                         {.endpoint = fresh_endpoint(),
                                          .topic = "perf/p",
                                          .durability = rill::Durability::persistent(logdir.string()),
                                          .log = {.fsync = rill::FsyncPolicy::every(10ms), .direct_io = direct_io}},
                                         count, subscribed != 0);
        fs::remove_all(logdir);
        return rate;
      };
      persistent[subscribed].push_back(persistent_rate(false));
      volatile_[subscribed].push_back(
          publish_rate(node, {.endpoint = fresh_endpoint(), .topic = "perf/p"}, count, subscribed != 0));
      direct[subscribed].push_back(persistent_rate(true));
      std::printf("round %d, %s: persistent every:10 %.0f msgs/s, with direct_io %.0f msgs/s, volatile %.0f msgs/s\n",
                  r + 1, subscribed ? "one subscriber" : "no subscriber", persistent[subscribed].back(),
                  direct[subscribed].back(), volatile_[subscribed].back());
    }
  }

  // The replay log: 1 KiB messages written by a persistent publisher (no subscriber).
  constexpr std::size_t size = 1024;
  const std::uint64_t replay_count = replay_mib * (1u << 20) / size;
  const auto replay_dir = dir / "replay";
  {
    auto pub = node.publisher({.endpoint = fresh_endpoint(),
                               .topic = "perf/replay",
                               .durability = rill::Durability::persistent(replay_dir.string()),
                               .log = {.fsync = rill::FsyncPolicy::never()}});
    if (!pub) die("writing the replay log", pub.error());
    std::vector<std::byte> payload(size, std::byte{'p'});
    for (std::uint64_t i = 0; i < replay_count; ++i) {
      if (auto r = pub->publish_bytes(payload); !r) die("writing the replay log", r.error());
    }
  }
  std::vector<double> replay, live;
  for (int r = 0; r < rounds; ++r) {
    replay.push_back(replay_rate(node, replay_dir, replay_count, "perf-" + std::to_string(r)));
    live.push_back(live_rate(node, replay_count, size));
    std::printf("round %d: replay %.0f msgs/s, live %.0f msgs/s (%llu x 1 KiB)\n", r + 1, replay.back(), live.back(),
                static_cast<unsigned long long>(replay_count));
  }
  fs::remove_all(dir);

  const double p = median(persistent[0]), v = median(volatile_[0]), rp = median(replay), lv = median(live);
  const double ps = median(persistent[1]), vs = median(volatile_[1]);
  const double d = median(direct[0]), ds = median(direct[1]);
  std::printf("publish 64 B, no subscriber: persistent every:10 %.0f msgs/s, volatile %.0f msgs/s, ratio %.2f\n", p, v,
              p / v);
  std::printf("publish 64 B, one subscriber: persistent every:10 %.0f msgs/s, volatile %.0f msgs/s, ratio %.2f\n", ps,
              vs, ps / vs);
  std::printf("publish 64 B, no subscriber: persistent every:10 direct_io %.0f msgs/s, ratio %.2f\n", d, d / v);
  std::printf("publish 64 B, one subscriber: persistent every:10 direct_io %.0f msgs/s, ratio %.2f\n", ds, ds / vs);
  std::printf("(targets: >= 1M msgs/s and >= 0.5x volatile)\n");
  std::printf("replay 1 KiB: %.0f msgs/s, live %.0f msgs/s, ratio %.2f (target >= 0.8)\n", rp, lv, rp / lv);
  if (!json.empty()) {
    std::ofstream out(json);
    out << "{\"publish\":{\"size\":64,\"count\":" << count << ",\"rounds\":" << rounds
        << ",\"persistent_every10_msgs_s\":" << p << ",\"volatile_msgs_s\":" << v << ",\"ratio\":" << p / v
        << ",\"direct_io\":{\"persistent_every10_msgs_s\":" << d << ",\"ratio\":" << d / v << "}"
        << ",\"subscribed\":{\"persistent_every10_msgs_s\":" << ps << ",\"volatile_msgs_s\":" << vs
        << ",\"ratio\":" << ps / vs << ",\"direct_io\":{\"persistent_every10_msgs_s\":" << ds
        << ",\"ratio\":" << ds / vs << "}}},\"replay\":{\"size\":1024,\"count\":" << replay_count
        << ",\"replay_msgs_s\":" << rp << ",\"live_msgs_s\":" << lv << ",\"ratio\":" << rp / lv << "}}\n";
  }
  return 0;
}
