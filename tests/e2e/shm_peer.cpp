// A scriptable shm peer for shm_e2e_test: the parts `rill sub` cannot do (keep
// samples, per-publisher accounting, drop privileges before subscribing).
//
//   shm_peer sub  POLICY PREFIX EXPECT_PUBS EXPECT_EACH WORK_US EP...
//       Receives until SIGTERM, or until EXPECT_PUBS publishers each reached
//       received + gaps == EXPECT_EACH (0: only SIGTERM ends it). Prints one line
//       per publisher, {"pub":ID,"received":R,"gaps":G}, then a stats line. Prints an
//       {"event":...} line at once whenever publishers_lost / publisher_restarts change.
//   shm_peer hold POLICY K EP
//       Takes K samples, keeps them, prints "holding K" and waits to be killed.
//   shm_peer access UID GID EP
//       Drops to UID/GID, subscribes, prints {"result":"ok"} or {"error":CODE,"message":TEXT}.
//   shm_peer pubs EP N WAIT_SUBS TOPIC...
//       Several topics on one endpoint from this one process: creates a publisher for the
//       first topic, waits for WAIT_SUBS subscriptions, publishes N messages; then, one by
//       one, creates a publisher for each further topic and publishes N at once (no wait:
//       subscriptions already on the endpoint must get them from the first). Prints
//       {"topic":T,"pub":ID,"sent":N,"joined":J} per topic (J: subscriptions it took in),
//       then holds the endpoint until SIGTERM and closes them all.
#include <grp.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rill/rill.hpp"

using namespace std::chrono_literals;

namespace {

volatile std::sig_atomic_t g_stop = 0;

struct PerPublisher {
  std::uint64_t received = 0;
  std::uint64_t gaps = 0;
};

int usage() {
  std::fprintf(stderr, "usage: shm_peer sub|hold|access ... (see shm_peer.cpp)\n");
  return 2;
}

rill::Policy policy_or_die(const char* text) {
  auto p = rill::parse_policy(text);
  if (!p) {
    std::fprintf(stderr, "shm_peer: %s\n", p.error().message().c_str());
    std::exit(2);
  }
  return *p;
}

int run_sub(int argc, char** argv) {
  if (argc < 8) return usage();
  const auto policy = policy_or_die(argv[2]);
  const std::string prefix = argv[3];
  const auto expect_pubs = std::strtoull(argv[4], nullptr, 10);
  const auto expect_each = std::strtoull(argv[5], nullptr, 10);
  const auto work = std::chrono::microseconds(std::strtoull(argv[6], nullptr, 10));
  std::vector<std::string> eps(argv + 7, argv + argc);
  std::map<std::uint64_t, PerPublisher> per;
  rill::Node node;
  auto sub =
      node.subscriber({.endpoints = eps,
                       .prefix = prefix,
                       .policy = policy,
                       .idle = rill::IdleStrategy::block,
                       .on_loss = [&](const rill::LossEvent& e) { per[e.publisher_id].gaps += e.last - e.first + 1; }});
  if (!sub) {
    std::printf("{\"error\":\"%s\"}\n", sub.error().message().c_str());
    return 1;
  }
  std::uint64_t lost = 0, restarts = 0;
  const auto done = [&] {
    if (expect_each == 0 || per.size() < expect_pubs) return false;
    for (const auto& [id, p] : per)
      if (p.received + p.gaps < expect_each) return false;
    return true;
  };
  while (g_stop == 0 && !done()) {
    sub->wait_poll(
        [&](const rill::MessageView& m) {
          ++per[m.publisher_id()].received;
          if (work.count() > 0) {
            const auto until = std::chrono::steady_clock::now() + work;
            while (std::chrono::steady_clock::now() < until) {
            }
          }
        },
        64, 20ms);
    const auto& st = sub->stats();
    if (st.publishers_lost != lost || st.publisher_restarts != restarts) {
      lost = st.publishers_lost;
      restarts = st.publisher_restarts;
      std::uint64_t total = 0;
      for (const auto& [id, p] : per) total += p.received;
      std::printf("{\"event\":1,\"publishers_lost\":%llu,\"publisher_restarts\":%llu,\"received\":%llu}\n",
                  static_cast<unsigned long long>(lost), static_cast<unsigned long long>(restarts),
                  static_cast<unsigned long long>(total));
      std::fflush(stdout);
    }
  }
  for (const auto& [id, p] : per) {
    std::printf("{\"pub\":\"%016llx\",\"received\":%llu,\"gaps\":%llu}\n", static_cast<unsigned long long>(id),
                static_cast<unsigned long long>(p.received), static_cast<unsigned long long>(p.gaps));
  }
  const auto& st = sub->stats();
  std::printf(
      "{\"stats\":{\"received\":%llu,\"gaps\":%llu,\"dropped\":%llu,\"malformed\":%llu,\"duplicates\":%llu,"
      "\"publishers\":%llu,\"publishers_lost\":%llu,\"publisher_restarts\":%llu,\"done\":%d}}\n",
      static_cast<unsigned long long>(st.received), static_cast<unsigned long long>(st.gaps),
      static_cast<unsigned long long>(st.dropped), static_cast<unsigned long long>(st.malformed),
      static_cast<unsigned long long>(st.duplicates), static_cast<unsigned long long>(st.publishers),
      static_cast<unsigned long long>(st.publishers_lost), static_cast<unsigned long long>(st.publisher_restarts),
      done() ? 1 : 0);
  std::fflush(stdout);
  return 0;
}

int run_hold(int argc, char** argv) {
  if (argc != 5) return usage();
  const auto policy = policy_or_die(argv[2]);
  const auto k = std::strtoull(argv[3], nullptr, 10);
  rill::Node node;
  auto sub =
      node.subscriber({.endpoints = {argv[4]}, .prefix = "", .policy = policy, .idle = rill::IdleStrategy::block});
  if (!sub) {
    std::printf("error %s\n", sub.error().message().c_str());
    return 1;
  }
  std::vector<rill::Sample> kept;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (kept.size() < k && std::chrono::steady_clock::now() < deadline) {
    if (auto s = sub->wait_take(20ms)) kept.push_back(std::move(*s));
  }
  if (kept.size() < k) {
    std::printf("timeout after %zu\n", kept.size());
    return 1;
  }
  std::printf("holding %zu\n", kept.size());
  std::fflush(stdout);
  for (;;) {
    // Keep the slot alive (as a real application would poll) until SIGKILL.
    sub->poll([](const rill::MessageView&) {}, 0);
    std::this_thread::sleep_for(10ms);
  }
}

int run_access(int argc, char** argv) {
  if (argc != 5) return usage();
  const auto uid = static_cast<uid_t>(std::strtoul(argv[2], nullptr, 10));
  const auto gid = static_cast<gid_t>(std::strtoul(argv[3], nullptr, 10));
  if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) {
    std::printf("{\"error\":\"setuid\",\"message\":\"cannot drop privileges\"}\n");
    return 1;
  }
  rill::Node node;
  auto sub = node.subscriber({.endpoints = {argv[4]}, .prefix = ""});
  if (sub) {
    std::printf("{\"result\":\"ok\"}\n");
  } else {
    const auto code = rill::to_string(sub.error().code);
    std::printf("{\"error\":\"%.*s\",\"message\":\"%s\"}\n", static_cast<int>(code.size()), code.data(),
                sub.error().message().c_str());
  }
  return 0;
}

int run_pubs(int argc, char** argv) {
  if (argc < 6) return usage();
  const std::string ep = argv[2];
  const auto n = std::strtoull(argv[3], nullptr, 10);
  const auto wait_subs = std::strtoull(argv[4], nullptr, 10);
  rill::Node node;
  std::vector<rill::Publisher> pubs;
  std::vector<std::string> topics(argv + 5, argv + argc);
  for (const auto& topic : topics) {
    auto pub = node.publisher({.endpoint = ep, .topic = topic, .publish_timeout = 10s});
    if (!pub) {
      std::printf("{\"error\":\"%s\"}\n", pub.error().message().c_str());
      return 1;
    }
    if (pubs.empty() && !pub->wait_for_subscribers(wait_subs, 30s)) {
      std::printf("{\"error\":\"subscribers did not come\"}\n");
      return 1;
    }
    for (std::uint64_t i = 1; i <= n; ++i) {
      if (auto r = pub->publish_text(topic + " " + std::to_string(i)); !r) {
        std::printf("{\"error\":\"%s: %s\"}\n", topic.c_str(), r.error().message().c_str());
        return 1;
      }
    }
    pubs.push_back(std::move(*pub));
  }
  for (std::size_t i = 0; i < pubs.size(); ++i) {
    std::printf("{\"topic\":\"%s\",\"pub\":\"%016llx\",\"sent\":%llu,\"joined\":%llu}\n", topics[i].c_str(),
                static_cast<unsigned long long>(pubs[i].id()), static_cast<unsigned long long>(pubs[i].stats().sent),
                static_cast<unsigned long long>(pubs[i].stats().joined));
  }
  std::fflush(stdout);
  while (g_stop == 0) {
    for (auto& p : pubs) p.service();
    std::this_thread::sleep_for(10ms);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  if (argc < 2) return usage();
  const std::string mode = argv[1];
  if (mode == "sub") return run_sub(argc, argv);
  if (mode == "hold") return run_hold(argc, argv);
  if (mode == "access") return run_access(argc, argv);
  if (mode == "pubs") return run_pubs(argc, argv);
  return usage();
}
