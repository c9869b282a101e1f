// kill -9 at random points: a writer process appends with fsync `always` from several
// threads and prints each sequence whose append returned success; it is killed, the log is
// checked, and a new writer continues. Every acknowledged append must be present, in order,
// exactly once, and the log must continue from where the last one stopped.
//
// RILL_LOG_KILLS sets the number of kills (default 60; the `perf`-labelled run uses 200).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "log_test_util.hpp"
#include "rill/log.hpp"
#include "../test_seed.hpp"

namespace {

std::string g_self;

const rill::LogOptions crash_opts{
    .fsync = rill::FsyncPolicy::always(), .segment_bytes = 16u << 10, .index_interval_bytes = 1024};

// The child: four threads append "pid thread counter" bodies and report "seq pid thread counter".
int run_writer(const char* dir, bool direct) {
  auto opts = crash_opts;
  opts.direct_io = direct;
  auto log = rill::Log::open(dir, opts);
  if (!log) {
    std::fprintf(stderr, "writer: open: %s\n", log.error().message().c_str());
    return 3;
  }
  return logtest::run_writer(*log, std::chrono::microseconds(0));
}

// Spawns a writer, kills it after `delay`, returns what it printed.
logtest::WriterRound crash_once(const std::string& dir, std::chrono::microseconds delay, bool direct) {
  return logtest::kill_writer({g_self, direct ? "--direct-writer" : "--writer", dir}, delay);
}

void kill_rounds(int kills, bool direct) {
  logtest::TempDir dir;
  const std::string logdir = (dir / "log").string();
  // Kill points from the printed seed (RILL_TEST_SEED replays them); the direct-I/O run gets its own stream.
  std::mt19937_64 rng(rilltest::test_seed() + (direct ? 1 : 0));
  // body -> sequence of every append that returned success, across all rounds
  std::map<std::string, std::uint64_t> acked;
  std::uint64_t max_acked = 0;
  std::uint64_t cut_tails = 0;
  std::uint64_t before_open = 0;
  for (int k = 0; k < kills; ++k) {
    const auto delay = std::chrono::microseconds(std::uniform_int_distribution<int>(2'000, 120'000)(rng));
    const auto round = crash_once(logdir, delay, direct);
    INFO("round " << k << ", killed after " << delay.count() << " us");
    REQUIRE_MESSAGE(WIFSIGNALED(round.status), "the writer ended by itself: status " << round.status);
    std::istringstream lines(round.out);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.empty()) continue;
      const auto sp = line.find(' ');
      const std::uint64_t seq = std::stoull(line.substr(0, sp));
      const auto [it, fresh] = acked.emplace(line.substr(sp + 1), seq);
      CHECK_MESSAGE(fresh, "one append reported twice: " << line);
      max_acked = std::max(max_acked, seq);
    }

    // What a restarted writer sees (read-only here: the next round's writer does the cutting).
    auto log = rill::Log::open(logdir, {.segment_bytes = crash_opts.segment_bytes, .read_only = true});
    if (!log && acked.empty() && log.error().code == rill::Errc::invalid_argument) {
      ++before_open;  // killed before its first segment existed (a slow start under load)
      continue;
    }
    REQUIRE_MESSAGE(log.has_value(), log.error().message());
    cut_tails += log->recovery().torn_tail ? 1 : 0;
    CHECK(log->last_sequence() >= max_acked);
    auto rd = log->reader(1);
    REQUIRE(rd.has_value());
    std::map<std::string, std::uint64_t> stored;
    std::map<std::string, std::uint64_t> last_per_thread;  // "pid thread" -> counter
    std::uint64_t expect = 1;
    for (;;) {
      auto rec = rd->next();
      REQUIRE_MESSAGE(rec.has_value(), rec.error().message());
      if (!*rec) break;
      REQUIRE((*rec)->sequence == expect++);  // gapless, in order
      const std::string body(logtest::text_of((*rec)->body));
      REQUIRE_MESSAGE(stored.emplace(body, (*rec)->sequence).second, "duplicate record: " << body);
      // One thread's appends are stored in the order it made them.
      const auto cut = body.rfind(' ');
      const auto counter = std::stoull(body.substr(cut + 1));
      auto [pt, first] = last_per_thread.emplace(body.substr(0, cut), counter);
      if (!first) {
        CHECK(counter > pt->second);
        pt->second = counter;
      }
    }
    for (const auto& [body, seq] : acked) {
      auto it = stored.find(body);
      REQUIRE_MESSAGE(it != stored.end(), "acknowledged append lost: seq " << seq << " body " << body);
      CHECK(it->second == seq);
    }
  }
  MESSAGE(kills << " kills, " << acked.size() << " acknowledged appends, last seq " << max_acked << ", " << cut_tails
                << " torn tails seen, " << before_open << " kills before the log existed");
  CHECK(acked.size() > static_cast<std::size_t>(kills));  // the writers really made progress
}

int kills_from_env(int fallback) {
  const char* env = std::getenv("RILL_LOG_KILLS");
  return env != nullptr ? std::atoi(env) : fallback;
}

}  // namespace

TEST_CASE("kill -9 at random points under fsync always: every acknowledged append survives, once, in order") {
  kill_rounds(kills_from_env(60), false);
}

TEST_CASE("the same with direct_io: records written around the page cache survive kill -9 as well") {
  // A direct write pads the last block with zeros; a kill leaves that padding behind, and
  // the next open must cut it like any torn tail without losing an acknowledged record.
  kill_rounds(kills_from_env(60) / 2, true);
}

int main(int argc, char** argv) {
  g_self = "/proc/self/exe";
  char resolved[4096];
  const ssize_t n = ::readlink("/proc/self/exe", resolved, sizeof resolved - 1);
  if (n > 0) g_self.assign(resolved, static_cast<std::size_t>(n));
  if (argc == 3 && std::strcmp(argv[1], "--writer") == 0) return run_writer(argv[2], false);
  if (argc == 3 && std::strcmp(argv[1], "--direct-writer") == 0) return run_writer(argv[2], true);
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
