// Soak: long-running `rill pub` processes on tcp, shm and reliable udp, each with subscriber
// processes that are killed (SIGKILL or SIGTERM, at random) and restarted every few seconds.
// Every 10 s the publishers' resident memory and open file descriptors, and this host's
// /dev/shm/rill.* entries, are sampled. After the warm-up (the first fifth of the run) they
// must stay flat: resident memory over the last fifth (its median) within 16 MiB and 25% of
// the warm-up level, and never more than 64 MiB above it (a burst may grow a queue for a
// while); descriptors and shm entries within a few of theirs. At the end every subscriber that ended cleanly must have
// an account that adds up, and the publishers must still be running.
//
// RILL_SOAK_SECONDS sets the length (default 1800, the figure README gives); RILL_TEST_SEED
// replays the churn. Label `perf`: CI skips it. Run:
//   RILL_SOAK_SECONDS=1800 ctest --test-dir build/release -R soak --output-on-failure
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"
#include "tests/test_seed.hpp"

namespace {

using namespace rill::e2e;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Sample {
  double at_s = 0;
  std::uint64_t rss_kb = 0;  // summed over the publishers
  std::uint64_t fds = 0;     // summed over the publishers
  std::uint64_t shm = 0;     // /dev/shm/rill.* entries
};

std::uint64_t rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      std::uint64_t v = 0;
      in >> v;
      return v;
    }
    in.ignore(4096, '\n');
  }
  return 0;
}

std::uint64_t fd_count(pid_t pid) {
  std::error_code ec;
  std::uint64_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

std::uint64_t shm_entries() {
  std::error_code ec;
  std::uint64_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/dev/shm", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (it->path().filename().string().starts_with("rill.")) ++n;
  }
  return n;
}

struct Lane {
  std::string name;
  std::string endpoint;
  std::unique_ptr<Process> pub;
  std::vector<std::unique_ptr<Process>> subs;
  int generation = 0;
  std::uint64_t restarts = 0;
  std::uint64_t accounted = 0;  // subscribers whose final stats were read and added up
};

std::unique_ptr<Process> start_sub(const TempDir& dir, Lane& lane, int slot, std::mt19937_64& rng) {
  static const char* policies[] = {"drop-oldest:1024", "backpressure:256", "buffer:1048576"};
  const std::string policy = policies[std::uniform_int_distribution<int>(0, 2)(rng)];
  return spawn_rill(dir, lane.name + "-sub" + std::to_string(slot) + "-" + std::to_string(++lane.generation),
                    {"sub", lane.endpoint, "soak/", "--policy", policy, "--format", "text", "--idle-exit-ms", "600000"});
}

}  // namespace

TEST_CASE("soak: publishers stay flat in memory, descriptors and shm segments under subscriber churn") {
  const char* env = std::getenv("RILL_SOAK_SECONDS");
  const auto length = std::chrono::seconds(env != nullptr ? std::atoi(env) : 1800);
  const auto seed = rilltest::test_seed();
  std::mt19937_64 rng(seed);
  TempDir dir;
  const auto pid = static_cast<unsigned>(::getpid());
  std::vector<Lane> lanes;
  lanes.push_back({.name = "tcp", .endpoint = tcp_endpoint(free_port())});
  lanes.push_back({.name = "shm", .endpoint = "shm://rill-soak-" + std::to_string(pid)});
  lanes.push_back({.name = "udp",
                   .endpoint = "udp://239.252." + std::to_string(pid % 250) + ".1:" + std::to_string(free_port()) +
                               "?iface=127.0.0.1&reliable=1"});
  const auto shm_before = shm_entries();
  for (auto& lane : lanes) {
    lane.pub = spawn_rill(dir, lane.name + "-pub",
                          {"pub", lane.endpoint, "soak/t", "--count", "4000000000", "--rate", "5000", "--size", "256"});
    for (int s = 0; s < 3; ++s) lane.subs.push_back(start_sub(dir, lane, s, rng));
  }

  std::vector<Sample> samples;
  const auto start = Clock::now();
  auto next_sample = start + 2s;
  while (Clock::now() - start < length) {
    // Churn: every 1-4 s one subscriber of one lane is killed (hard or soft) and replaced.
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(1000, 4000)(rng)));
    auto& lane = lanes[std::uniform_int_distribution<std::size_t>(0, lanes.size() - 1)(rng)];
    const auto slot = std::uniform_int_distribution<std::size_t>(0, lane.subs.size() - 1)(rng);
    auto& sub = lane.subs[slot];
    const bool hard = std::uniform_int_distribution<int>(0, 1)(rng) == 1;
    sub->kill(hard ? SIGKILL : SIGTERM);
    const auto st = sub->wait(10s);
    if (!hard) {
      CHECK_MESSAGE(st.ok(), lane.name << " subscriber: " << st.describe() << "\n" << sub->err());
      const auto stats = parse_stats(sub->out());
      CHECK_MESSAGE(stats.found, lane.name << " subscriber printed no stats");
      if (stats.found) ++lane.accounted;
    }
    sub = start_sub(dir, lane, static_cast<int>(slot), rng);
    ++lane.restarts;
    // Outputs of dead subscribers are not needed: keep the work directory small.
    for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
      if (f.path().filename().string().find("-sub") != std::string::npos && f.file_size() > (64u << 20)) {
        std::filesystem::resize_file(f.path(), 0);
      }
    }
    if (Clock::now() >= next_sample) {
      next_sample += 10s;
      Sample s{.at_s = std::chrono::duration<double>(Clock::now() - start).count(), .shm = shm_entries()};
      std::string per_lane;
      for (auto& l : lanes) {
        REQUIRE_MESSAGE(l.pub->running(), l.name << " publisher died: " << l.pub->err());
        const auto rss = rss_kb(l.pub->pid());
        s.rss_kb += rss;
        s.fds += fd_count(l.pub->pid());
        per_lane += " " + l.name + " " + std::to_string(rss);
      }
      samples.push_back(s);
      std::printf("soak: %7.0f s  rss %6llu KiB (%s)  fds %4llu  shm %3llu\n", s.at_s,
                  static_cast<unsigned long long>(s.rss_kb), per_lane.c_str(), static_cast<unsigned long long>(s.fds),
                  static_cast<unsigned long long>(s.shm));
      std::fflush(stdout);
    }
  }
  REQUIRE(samples.size() >= 5);
  const auto warm = samples.begin() + static_cast<std::ptrdiff_t>(samples.size() / 5);
  const Sample base = *warm;
  std::uint64_t rss_max = 0;
  std::uint64_t fds_max = 0;
  std::uint64_t shm_max = 0;
  for (auto it = warm; it != samples.end(); ++it) {
    rss_max = std::max(rss_max, it->rss_kb);
    fds_max = std::max(fds_max, it->fds);
    shm_max = std::max(shm_max, it->shm);
  }
  std::uint64_t restarts = 0;
  for (const auto& l : lanes) restarts += l.restarts;
  MESSAGE("soak " << length.count() << " s (seed " << seed << "): " << restarts << " subscriber restarts; after warm-up"
                  << " rss " << base.rss_kb << " -> max " << rss_max << " KiB, fds " << base.fds << " -> max "
                  << fds_max << ", shm entries " << base.shm << " -> max " << shm_max << " (before the run "
                  << shm_before << ")");
  std::vector<std::uint64_t> tail;
  for (auto it = samples.end() - static_cast<std::ptrdiff_t>(samples.size() / 5); it != samples.end(); ++it) {
    tail.push_back(it->rss_kb);
  }
  std::nth_element(tail.begin(), tail.begin() + static_cast<std::ptrdiff_t>(tail.size() / 2), tail.end());
  const auto rss_end = tail[tail.size() / 2];
  MESSAGE("resident memory at the end (median of the last fifth): " << rss_end << " KiB");
  CHECK(rss_end <= base.rss_kb + std::min<std::uint64_t>(16u << 10, base.rss_kb / 4));
  CHECK(rss_max <= base.rss_kb + (64u << 10));
  CHECK(fds_max <= base.fds + 8);
  CHECK(shm_max <= base.shm + 4);
  for (auto& lane : lanes) {
    CHECK_MESSAGE(lane.pub->running(), lane.name << " publisher died: " << lane.pub->err());
    lane.pub->kill(SIGTERM);
    CHECK(lane.pub->wait(10s).ok());
    for (auto& s : lane.subs) s->kill(SIGKILL);
  }
}
