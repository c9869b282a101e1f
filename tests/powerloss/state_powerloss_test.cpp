// Power loss under the durable state files beside the log: the ack store, a durable
// subscriber's state file, a persistent publisher's sequence mark and a consumer group's
// ledger, each on lazyfs (lazyfs.cpp), which keeps file data in memory until it is synced.
// A writer process updates one of them as fast as it can and reports on a pipe (off the mount)
// each value whose durability call returned; it is killed with SIGKILL at a random moment,
// sometimes while stopped with the power cut under it, and the power is cut. Then:
//   ack store:     it opens, and holds at least the last ack() that returned;
//   state file:    it opens, and its position is at least the last sync()ed one;
//   sequence mark: a reboot is modelled (the boot id stored in the file is changed, as a new
//                  boot id would be): it opens, and never offers a sequence that a returned
//                  hand_out(seq, reserve) had already given;
//   group ledger:  it opens, and every claim finished before the last sync() is "done" to a
//                  new member.
// "No state file is ever unreadable after a cut" holds for each. RILL_POWERLOSS_CUTS sets the
// cuts per file (default 12); RILL_TEST_SEED replays a run. Exits 77 without FUSE.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "policies/durability/delivered_store.hpp"
#include "policies/durability/group_ledger.hpp"
#include "policies/durability/sequence_mark.hpp"
#include "rill/ack_store.hpp"
#include "tests/log/log_test_util.hpp"
#include "tests/powerloss/lazyfs_mount.hpp"
#include "tests/temp_dir.hpp"
#include "tests/test_seed.hpp"

namespace {

using namespace std::chrono_literals;
using rill::detail::DeliveredStore;
using rill::detail::GroupLedger;
using rill::detail::SequenceMark;

std::string g_self;
constexpr std::uint64_t publisher = 0xfeedbeef;
constexpr int sync_every = 16;

void report(std::uint64_t v) {
  const std::string line = std::to_string(v) + "\n";
  if (::write(1, line.data(), line.size()) < 0) std::_Exit(5);
}

template <class R>
void must(const R& r, const char* what) {
  if (r) return;
  std::fprintf(stderr, "writer: %s: %s\n", what, r.error().message().c_str());
  std::_Exit(4);
}

// The writers run until killed; each reports what its last durability call made durable.
int write_acks(const std::string& dir) {
  auto store = rill::AckStore::open(dir + "/acks");
  must(store, "open");
  std::uint64_t seq = store->get("orders").value_or(0);
  for (;;) {
    must(store->ack("orders", ++seq), "ack");
    report(seq);
  }
}

// `synced` false: reports positions it never syncs (the harness must lose some of them).
int write_state(const std::string& dir, bool synced) {
  auto store = DeliveredStore::open(dir, "sub");
  must(store, "open");
  auto& e = store->slot(publisher);
  for (std::uint64_t seq = e.delivered + 1;; ++seq) {
    DeliveredStore::begin(e, seq);
    DeliveredStore::finish(e, seq);
    if (seq % sync_every == 0) {
      if (synced) must(store->sync(), "sync");
      report(seq);
    }
  }
}

int write_mark(const std::string& dir) {
  auto mark = SequenceMark::open(dir);
  must(mark, "open");
  for (std::uint64_t seq = mark->last_handed_out() + 1;; ++seq) {
    must(mark->hand_out(seq, true), "hand_out");
    report(seq);
  }
}

int write_ledger(const std::string& dir, std::uint64_t first) {
  auto ledger = GroupLedger::open(dir, "group");
  must(ledger, "open");
  for (std::uint64_t seq = first;; ++seq) {
    const auto claim = ledger->begin(publisher, seq);
    ledger->finish(claim);
    if (seq % sync_every == 0) {
      must(ledger->sync(), "sync");
      report(seq);
    }
  }
}

// Writer k of the ledger claims sequences from here on (rounds apart, inside the ledger's window).
std::uint64_t ledger_first(int k) {
  return static_cast<std::uint64_t>(k) * 20'000 + 1;
}

// The largest value a killed writer reported (0: none).
std::uint64_t last_reported(const std::string& out) {
  std::istringstream in(out);
  std::uint64_t v = 0;
  std::uint64_t last = 0;
  while (in >> v) last = v;
  return last;
}

struct Round {
  std::uint64_t reported = 0;  // the writer's last durable value
  bool while_running = false;
};

// One writer killed at a random moment with the power cut, before or after the kill.
Round cut_once(lazyfs::LazyFs& fs, const std::vector<std::string>& argv, std::mt19937_64& rng) {
  const auto delay = std::chrono::microseconds(std::uniform_int_distribution<int>(3'000, 80'000)(rng));
  const bool running = std::uniform_int_distribution<int>(0, 1)(rng) == 1;
  const bool tear = std::uniform_int_distribution<int>(0, 1)(rng) == 1;
  const std::uint64_t tear_seed = rng();
  const auto power_cut = [&] { fs.cut(tear ? std::optional(tear_seed) : std::nullopt); };
  std::function<bool(pid_t, int*)> stop_and_cut;
  if (running) {
    stop_and_cut = [&](pid_t pid, int* status) {
      ::kill(pid, SIGSTOP);
      int st = 0;
      REQUIRE(::waitpid(pid, &st, WUNTRACED) == pid);
      if (!WIFSTOPPED(st)) {
        *status = st;
        return true;
      }
      power_cut();
      return false;
    };
  }
  INFO("killed after " << delay.count() << " us" << (running ? ", power cut while it ran" : "")
                       << (tear ? ", a tear" : ""));
  const auto round = logtest::kill_writer(argv, delay, stop_and_cut);
  REQUIRE_MESSAGE(WIFSIGNALED(round.status), "the writer ended by itself: status " << round.status);
  if (!running) power_cut();
  return {last_reported(round.out), running};
}

int cuts_from_env() {
  const char* env = std::getenv("RILL_POWERLOSS_CUTS");
  return env != nullptr ? std::atoi(env) : 12;
}

// Mounts lazyfs for one file kind and runs `check(k, reported)` after each of the cuts.
// `backing` is the directory under lazyfs (on tmpfs: lazyfs's own fsyncs cost nothing there).
void power_cuts(const std::string& kind, const rilltest::ShmTempDir& backing,
                const std::function<void(int, std::uint64_t, const std::string&)>& check, std::uint64_t seed) {
  rilltest::TempDir mnt;
  lazyfs::LazyFs fs(backing.str(), mnt.str());
  fs.mount();
  const std::string dir = fs.mountpoint() + "/state";
  REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
  std::mt19937_64 rng(seed);
  std::uint64_t total = 0;
  std::uint64_t dropped = 0;
  const int cuts = cuts_from_env();
  for (int k = 0; k < cuts; ++k) {
    INFO(kind << ", seed " << seed << ", cut " << k);
    const auto round = cut_once(fs, {g_self, "--writer", kind, dir, std::to_string(k)}, rng);
    total += round.reported;
    dropped += fs.counters().at("dropped_bytes");
    fs.remount();
    check(k, round.reported, dir);
  }
  MESSAGE(kind << ": " << cuts << " cuts (seed " << seed << "), lazyfs dropped " << dropped << " unsynced bytes");
  CHECK_MESSAGE(total > 0, "no writer ever reported a durable value: nothing was tested");
}

}  // namespace

TEST_CASE("ack store: after a power cut it opens and holds every ack that returned") {
  std::uint64_t best = 0;
  rilltest::ShmTempDir backing;
  power_cuts(
      "acks", backing,
      [&](int, std::uint64_t reported, const std::string& dir) {
        auto store = rill::AckStore::open(dir + "/acks");
        REQUIRE_MESSAGE(store.has_value(), "the ack store is unreadable after the cut: " << store.error().message());
        best = std::max(best, reported);
        const auto got = store->get("orders").value_or(0);
        CHECK_MESSAGE(got >= best, "ack " << best << " returned, the store holds " << got);
        best = std::max(best, got);
      },
      rilltest::test_seed());
}

TEST_CASE("subscriber state file: after a power cut it opens at or past the last synced position") {
  std::uint64_t best = 0;
  rilltest::ShmTempDir backing;
  power_cuts(
      "state", backing,
      [&](int, std::uint64_t reported, const std::string& dir) {
        auto store = DeliveredStore::open(dir, "sub");
        REQUIRE_MESSAGE(store.has_value(), "the state file is unreadable after the cut: " << store.error().message());
        best = std::max(best, reported);
        const auto* e = store->find(publisher);
        const auto got = e != nullptr ? e->delivered : 0;
        CHECK_MESSAGE(got >= best, "position " << best << " was synced, the file holds " << got);
        best = std::max(best, got);
      },
      rilltest::test_seed() + 1);
}

TEST_CASE("the harness has teeth: positions of a state file that were never synced are lost at a cut") {
  int lost = 0;
  rilltest::ShmTempDir backing;
  power_cuts(
      "state-unsynced", backing,
      [&](int, std::uint64_t reported, const std::string& dir) {
        auto store = DeliveredStore::open(dir, "sub");
        REQUIRE_MESSAGE(store.has_value(), "the state file is unreadable after the cut: " << store.error().message());
        const auto* e = store->find(publisher);
        if ((e != nullptr ? e->delivered : 0) < reported) ++lost;
      },
      rilltest::test_seed() + 4);
  CHECK_MESSAGE(lost > 0, "every unsynced position survived the cuts: lazyfs does not drop a mapping's writes");
}

TEST_CASE("sequence mark: after a power cut and a reboot no sequence that was handed out is offered again") {
  std::uint64_t best = 0;
  rilltest::ShmTempDir backing;
  const std::string under = backing.str();
  power_cuts(
      "mark", backing,
      [&](int, std::uint64_t reported, const std::string& dir) {
        lazyfs::change_boot_id(under + "/state/sequence.mark");
        auto mark = SequenceMark::open(dir);
        REQUIRE_MESSAGE(mark.has_value(), "the sequence mark is unreadable after the cut: " << mark.error().message());
        best = std::max(best, reported);
        CHECK_MESSAGE(mark->last_handed_out() >= best,
                      "seq " << best << " was handed out, the mark goes on from " << mark->last_handed_out() + 1);
        best = std::max(best, mark->last_handed_out());
        // As a restarted publisher does once its log holds everything up to there (lost records).
        auto settled = mark->settle(mark->last_handed_out());
        REQUIRE_MESSAGE(settled.has_value(), settled.error().message());
      },
      rilltest::test_seed() + 2);
}

TEST_CASE("group ledger: after a power cut every claim finished before the last sync is done") {
  rilltest::ShmTempDir backing;
  power_cuts(
      "ledger", backing,
      [&](int k, std::uint64_t reported, const std::string& dir) {
        auto ledger = GroupLedger::open(dir, "group");
        REQUIRE_MESSAGE(ledger.has_value(), "the ledger is unreadable after the cut: " << ledger.error().message());
        // Writer k claimed from its own first sequence on (see main), so no round reads another's.
        const std::uint64_t first = ledger_first(k);
        std::uint64_t not_done = 0;
        for (std::uint64_t seq = first; seq <= reported; ++seq) {
          if (ledger->begin(publisher, seq).verdict != GroupLedger::Verdict::done) ++not_done;
        }
        CHECK_MESSAGE(not_done == 0, not_done << " of the claims " << first << ".." << reported
                                              << " finished before a sync are not done");
      },
      rilltest::test_seed() + 3);
}

int main(int argc, char** argv) {
  char resolved[4096];
  const ssize_t n = ::readlink("/proc/self/exe", resolved, sizeof resolved - 1);
  g_self = n > 0 ? std::string(resolved, static_cast<std::size_t>(n)) : "/proc/self/exe";
  if (argc == 5 && std::strcmp(argv[1], "--writer") == 0) {
    const std::string kind = argv[2];
    const std::string dir = argv[3];
    if (kind == "acks") return write_acks(dir);
    if (kind == "state") return write_state(dir, true);
    if (kind == "state-unsynced") return write_state(dir, false);
    if (kind == "mark") return write_mark(dir);
    if (kind == "ledger") return write_ledger(dir, ledger_first(std::atoi(argv[4])));
    return 2;
  }
  if (const int skip = lazyfs::unavailable(); skip != 0) return skip;
  (void)rilltest::test_seed();  // printed before the first case
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
