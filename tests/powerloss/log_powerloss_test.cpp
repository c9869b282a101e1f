// Power loss at random points: the log lives on lazyfs (lazyfs.cpp), which keeps file data in
// memory until it is fsync'ed. A writer process appends from four threads and reports each
// sequence whose append returned on a pipe (off the mount); it is killed with SIGKILL, then the
// power is cut (lazyfs drops every unsynced write), and the log is reopened and checked:
//   always:   every append that returned is present, once, in order, gapless; the log opens.
//   every:MS: the log opens; what survives is a gapless prefix of what was appended; what a
//             previous check synced survives; the next append continues right after the last
//             surviving record (README: a record lost under every/never leaves no gap, so its
//             sequence can be handed out again, at the Log level).
//   never:    as every, and it must really lose appends that had returned: the harness has teeth.
//
// RILL_POWERLOSS_CUTS sets the cuts under always (default 30; `never` and `every` get a half and
// a third of it); RILL_TEST_SEED replays a run. Exits 77 (skipped) without lazyfs or /dev/fuse.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "rill/log.hpp"
#include "tests/log/log_test_util.hpp"
#include "tests/powerloss/lazyfs_mount.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string g_self;
std::uint64_t g_seed = 0;

rill::LogOptions opts_for(const rill::FsyncPolicy& policy) {
  return {.fsync = policy, .segment_bytes = 64u << 10, .index_interval_bytes = 1024};
}

// The child: four threads append "pid thread counter" bodies and report "seq pid thread counter"
// on stdout (a pipe to the test) after each append returned.
int run_writer(const char* dir, const char* policy_text) {
  const auto policy = rill::parse_fsync_policy(policy_text);
  if (!policy) return 2;
  auto log = rill::Log::open(dir, opts_for(*policy));
  if (!log) {
    std::fprintf(stderr, "writer: open: %s\n", log.error().message().c_str());
    return 3;
  }
  // Under every/never an append only fills a buffer; paced, the log stays a size the checks
  // can read back each round (the kill and the cut still land at any point of the write path).
  const bool paced = policy->mode != rill::FsyncMode::always;
  return logtest::run_writer(*log, paced ? std::chrono::microseconds(200) : std::chrono::microseconds(0));
}

// Spawns a writer on `dir`, kills it with SIGKILL after `delay`, returns what it reported. With
// `cut_first`, the power goes while the writer runs: it is stopped (SIGSTOP, waited for, so
// nothing it reports afterwards can come from after the cut), `cut_first` runs with its writes
// and fsyncs still in flight in the kernel, and then it is killed.
logtest::WriterRound kill_writer(const std::string& dir, const std::string& policy, std::chrono::microseconds delay,
                                 const std::function<void()>& cut_first) {
  std::function<bool(pid_t, int*)> stop_and_cut;
  if (cut_first) {
    stop_and_cut = [&](pid_t pid, int* status) {
      ::kill(pid, SIGSTOP);
      int st = 0;
      REQUIRE(::waitpid(pid, &st, WUNTRACED) == pid);
      if (!WIFSTOPPED(st)) {
        *status = st;  // it ended by itself before the stop
        return true;
      }
      cut_first();
      return false;
    };
  }
  return logtest::kill_writer({g_self, "--writer", dir, policy}, delay, stop_and_cut);
}

struct Tally {
  int cuts = 0;
  int tears = 0;
  int while_running = 0;
  std::uint64_t acked = 0;
  std::uint64_t lost = 0;  // appends that had returned and were gone after the cut
  int rounds_with_loss = 0;
  std::uint64_t reused = 0;  // of those, sequences a later append was given again
  int torn_tails = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t dropped_bytes = 0;  // what lazyfs threw away at the cuts
  std::uint64_t stale_ops = 0;      // writes and syncs of killed writers that reached lazyfs after a cut
};

Tally power_cuts(const rill::FsyncPolicy& policy, int cuts, std::uint64_t seed) {
  const std::string policy_text = rill::to_string(policy);
  const bool always = policy.mode == rill::FsyncMode::always;
  // Backing files on tmpfs: lazyfs's own fsyncs cost nothing there, and do not matter (the
  // power cut is simulated above them).
  rilltest::ShmTempDir backing;
  logtest::TempDir mnt;
  lazyfs::LazyFs fs(backing.str(), mnt.str());
  fs.mount();
  const std::string logdir = fs.mountpoint() + "/log";
  std::mt19937_64 rng(seed);
  Tally tally;
  // Bodies of sequences 1..durable.size(): what the last check saw and then synced.
  std::vector<std::string> durable;
  for (int k = 0; k < cuts; ++k) {
    const auto delay = std::chrono::microseconds(std::uniform_int_distribution<int>(2'000, 120'000)(rng));
    // Half the cuts tear the unsynced data instead of dropping all of it; half strike while
    // the writer runs (stopped, not yet killed), the others after the kill.
    const bool tear = std::uniform_int_distribution<int>(0, 1)(rng) == 1;
    const bool running = std::uniform_int_distribution<int>(0, 1)(rng) == 1;
    const std::uint64_t tear_seed = rng();
    INFO(policy_text << ", seed " << seed << ", cut " << k << " after " << delay.count() << " us"
                     << (tear ? ", a tear" : "") << (running ? ", while the writer ran" : ", after the kill"));
    const auto power_cut = [&] { fs.cut(tear ? std::optional(tear_seed) : std::nullopt); };
    const auto round = kill_writer(logdir, policy_text, delay, running ? power_cut : std::function<void()>());
    REQUIRE_MESSAGE(WIFSIGNALED(round.status), "the writer ended by itself: status " << round.status);
    if (!running) power_cut();
    ++tally.cuts;
    tally.tears += tear ? 1 : 0;
    tally.while_running += running ? 1 : 0;

    std::vector<std::pair<std::uint64_t, std::string>> acked;  // this writer's returned appends
    std::istringstream lines(round.out);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.empty()) continue;
      const auto sp = line.find(' ');
      acked.emplace_back(std::stoull(line.substr(0, sp)), line.substr(sp + 1));
    }
    tally.acked += acked.size();

    // Reopen as a restarted writer would (read-write: recovery cuts a torn tail, never refuses).
    auto log = rill::Log::open(logdir, opts_for(policy));
    REQUIRE_MESSAGE(log.has_value(), "the log does not open after the cut: " << log.error().message());
    tally.torn_tails += log->recovery().torn_tail ? 1 : 0;
    auto rd = log->reader(1);
    REQUIRE(rd.has_value());
    std::vector<std::string> stored;
    std::map<std::string, std::uint64_t> seen;             // body -> sequence
    std::map<std::string, std::uint64_t> last_per_thread;  // "pid thread" -> counter
    for (;;) {
      auto rec = rd->next();
      REQUIRE_MESSAGE(rec.has_value(), rec.error().message());
      if (!*rec) break;
      REQUIRE((*rec)->sequence == stored.size() + 1);  // gapless, in order
      std::string body(logtest::text_of((*rec)->body));
      REQUIRE_MESSAGE(seen.emplace(body, (*rec)->sequence).second, "duplicate record: " << body);
      // One thread's appends are stored in the order it made them, without holes: a prefix.
      const auto cut = body.rfind(' ');
      const auto counter = std::stoull(body.substr(cut + 1));
      auto [pt, first] = last_per_thread.emplace(body.substr(0, cut), counter);
      if (first) {
        CHECK_MESSAGE(counter == 0, "thread " << pt->first << " starts at " << counter);
      } else {
        CHECK_MESSAGE(counter == pt->second + 1,
                      "thread " << pt->first << " jumps from " << pt->second << " to " << counter);
        pt->second = counter;
      }
      stored.push_back(std::move(body));
    }
    const std::uint64_t last = stored.size();
    REQUIRE_MESSAGE(last >= durable.size(), "synced records lost: " << durable.size() << " before, " << last << " now");
    for (std::size_t i = 0; i < durable.size(); ++i) {
      REQUIRE_MESSAGE(stored[i] == durable[i],
                      "synced record " << i + 1 << " changed from '" << durable[i] << "' to '" << stored[i] << "'");
    }
    std::uint64_t lost = 0;
    for (const auto& [seq, body] : acked) {
      if (seq <= last) {
        // Survived: under its own sequence (a surviving record is never another append's).
        REQUIRE_MESSAGE(stored[seq - 1] == body,
                        "seq " << seq << " holds '" << stored[seq - 1] << "', the writer got it for '" << body << "'");
      } else {
        REQUIRE_MESSAGE(!always, "acknowledged append lost under always: seq " << seq << " body " << body
                                                                               << " (log ends at " << last << ")");
        ++lost;
      }
    }
    tally.lost += lost;
    tally.rounds_with_loss += lost > 0 ? 1 : 0;

    // The log continues right after the last survivor; a lost sequence is handed out again.
    REQUIRE(log->next_sequence() == last + 1);
    std::uint64_t max_acked = 0;
    for (const auto& a : acked) max_acked = std::max(max_acked, a.first);
    tally.reused += max_acked > last ? max_acked - last : 0;
    const std::string marker = "check " + std::to_string(k);
    auto seq = log->append(logtest::bytes_of(marker));
    REQUIRE_MESSAGE(seq.has_value(), seq.error().message());
    CHECK(*seq == last + 1);
    REQUIRE(log->sync().has_value());
    REQUIRE(log->close().has_value());
    stored.push_back(marker);
    durable = std::move(stored);
    tally.last_seq = durable.size();
  }
  auto counters = fs.counters();
  tally.dropped_bytes = counters["dropped_bytes"];
  tally.stale_ops = counters["stale_ops"];
  MESSAGE(policy_text << ": " << tally.cuts << " cuts (" << tally.tears << " tears, " << tally.while_running
                      << " while the writer ran; seed " << seed << "), " << tally.acked << " appends returned, "
                      << tally.lost << " of them lost in " << tally.rounds_with_loss << " cuts, " << tally.reused
                      << " sequences handed out again, " << tally.torn_tails << " torn tails cut, last seq "
                      << tally.last_seq << ", lazyfs dropped " << tally.dropped_bytes << " unsynced bytes and refused "
                      << tally.stale_ops << " late requests of killed writers");
  CHECK(tally.acked > static_cast<std::uint64_t>(cuts));  // the writers really made progress
  return tally;
}

int cuts_from_env(int fallback) {
  const char* env = std::getenv("RILL_POWERLOSS_CUTS");
  return env != nullptr ? std::atoi(env) : fallback;
}

}  // namespace

TEST_CASE("power cut at random points under fsync always: every append that returned survives, once, in order") {
  const auto t = power_cuts(rill::FsyncPolicy::always(), cuts_from_env(30), g_seed);
  CHECK(t.lost == 0);
}

TEST_CASE("power cut under fsync every:20: the log opens, a gapless prefix survives, appends continue after it") {
  power_cuts(rill::FsyncPolicy::every(20ms), std::max(5, cuts_from_env(30) / 2), g_seed + 1);
}

TEST_CASE("the harness has teeth: under fsync never a power cut loses appends that had returned") {
  const auto t = power_cuts(rill::FsyncPolicy::never(), std::max(5, cuts_from_env(30) / 3), g_seed + 2);
  CHECK_MESSAGE(t.lost > 0, "no returned append was lost under never: lazyfs does not drop unsynced writes");
  CHECK(t.dropped_bytes > 0);
}

int main(int argc, char** argv) {
  g_self = "/proc/self/exe";
  char resolved[4096];
  const ssize_t n = ::readlink("/proc/self/exe", resolved, sizeof resolved - 1);
  if (n > 0) g_self.assign(resolved, static_cast<std::size_t>(n));
  if (argc == 4 && std::strcmp(argv[1], "--writer") == 0) return run_writer(argv[2], argv[3]);

  if (const int skip = lazyfs::unavailable(); skip != 0) return skip;
  const char* env = std::getenv("RILL_TEST_SEED");
  g_seed = env != nullptr ? std::strtoull(env, nullptr, 10) : std::random_device{}();
  std::printf("log_powerloss: seed %llu (replay with RILL_TEST_SEED=%llu)\n", static_cast<unsigned long long>(g_seed),
              static_cast<unsigned long long>(g_seed));
  std::fflush(stdout);
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
