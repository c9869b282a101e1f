// Power loss under a whole durable publisher: `rill pub --durability persistent:DIR` runs with
// its log (and sequence mark) on lazyfs, a subscriber in this process watches what it sends,
// and the power is cut at seeded random points (the publisher is stopped, lazyfs drops every
// unsynced write, the publisher is killed, the file system is mounted again), then the next
// publisher starts on what survived. At the end a durable subscriber reads the log from its
// start, and what it gets is held against what was seen live:
//   always:   every message any subscriber saw is in the log with the same payload, and the
//             log has no gap: a message is synced before it is sent.
//   every:MS: no sequence is ever handed out twice (a number seen live is in the log with the
//             same payload, or reported lost: a gap, never a different message); each cut
//             loses at most what the publisher sent in MS ms plus a bound for one fdatasync.
//   never:    as every, with no time bound, and the cuts must really lose messages that were
//             seen live (the harness has teeth at this level too).
// Payloads name the publisher's incarnation ("inc7"), so a reused number shows as a message
// with another payload.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <map>
#include <random>
#include <string>

#include "e2e/process.hpp"
#include "lazyfs_mount.hpp"
#include "test_seed.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using rill::e2e::Process;

int cuts_from_env(int fallback) {
  const char* env = std::getenv("RILL_POWERLOSS_CUTS");
  return env != nullptr ? std::max(1, std::atoi(env)) : fallback;
}

// What live subscribers saw: sequence -> payload, over every incarnation.
using Seen = std::map<std::uint64_t, std::string>;

const std::uint64_t rate = 4000;  // messages per second each incarnation publishes

std::unique_ptr<Process> start_publisher(const rill::e2e::TempDir& work, const std::string& ep,
                                         const std::string& log_dir, const std::string& fsync, int inc,
                                         const std::vector<std::string>& extra) {
  std::vector<std::string> args{"pub", ep, "pl/events", "--durability", "persistent:" + log_dir, "--fsync", fsync,
                                "--data", "inc" + std::to_string(inc), "--wait-subs", "1", "--linger-ms", "600000",
                                "--segment-bytes", "1048576"};
  args.insert(args.end(), extra.begin(), extra.end());
  return rill::e2e::spawn_rill(work, "pub" + std::to_string(inc), args);
}

// Subscribes volatile and records what arrives; the publisher waits for it (--wait-subs 1).
struct LiveSubscriber {
  rill::Node node;
  rill::Subscriber sub;
  Seen* seen;

  LiveSubscriber(const std::string& ep, Seen& out)
      : sub(*node.subscriber({.endpoints = {ep}, .prefix = "pl/", .policy = rill::Policy::buffer(std::size_t{1} << 24)})),
        seen(&out) {}

  std::uint64_t drain(std::chrono::milliseconds wait) {
    std::uint64_t n = 0;
    sub.wait_poll(
        [&](const rill::MessageView& m) {
          (*seen)[m.sequence()] = std::string(m.payload_text());
          ++n;
        },
        1024, wait);
    return n;
  }
};

// A reboot, as the sequence mark sees one: the boot id it stored is no longer this boot's.
// Written through the remounted file system and synced, as the disk the next boot finds; a
// mark that never reached the disk (created, never synced: empty after the cut) has none.
void next_boot(const std::string& mark) {
  const int fd = ::open(mark.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    REQUIRE_MESSAGE(e == ENOENT, "open " << mark << ": " << std::strerror(e));
    return;
  }
  char id[36];
  if (::pread(fd, id, sizeof id, 16) == static_cast<ssize_t>(sizeof id)) {
    id[0] = id[0] == 'x' ? 'y' : 'x';
    CHECK(::pwrite(fd, id, sizeof id, 16) == static_cast<ssize_t>(sizeof id));
    CHECK(::fsync(fd) == 0);
  }
  ::close(fd);
}

void run(const std::string& fsync, int cuts, std::uint64_t seed, std::optional<std::chrono::milliseconds> window) {
  if (lazyfs::unavailable() != 0) return;
  INFO("fsync " << fsync << ", seed " << seed << " (RILL_TEST_SEED replays it)");
  std::mt19937_64 rng(seed);
  rilltest::ShmTempDir backing;
  rill::e2e::TempDir work;
  lazyfs::LazyFs fs(backing.str(), (work.path() / "mnt").string());
  std::filesystem::create_directories(work.path() / "mnt");
  fs.mount();
  const std::string log_dir = fs.mountpoint() + "/log";
  const std::string ep = rilltest::fresh_endpoint();

  Seen seen;
  LiveSubscriber live(ep, seen);
  std::uint64_t total_seen = 0;
  for (int k = 0; k < cuts; ++k) {
    INFO("cut " << k);
    auto pub = start_publisher(work, ep, log_dir, fsync, k, {"--count", "1000000", "--rate", std::to_string(rate)});
    // Most cuts land after a random number of messages reached the subscriber; one in five
    // lands a few milliseconds after the start (process start, log recovery, the greeting).
    const bool early = std::uniform_int_distribution<int>(0, 4)(rng) == 0;
    const std::uint64_t target = std::uniform_int_distribution<std::uint64_t>(1, 6000)(rng);
    const bool tear = std::uniform_int_distribution<int>(0, 1)(rng) == 1;
    const std::uint64_t tear_seed = rng();
    std::uint64_t got = 0;
    if (early) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::uniform_int_distribution<int>(1, 40)(rng));
      while (std::chrono::steady_clock::now() < until) got += live.drain(1ms);
    } else {
      const auto deadline = std::chrono::steady_clock::now() + 20s;
      while (got < target && std::chrono::steady_clock::now() < deadline && pub->running()) got += live.drain(5ms);
      REQUIRE_MESSAGE(got >= target, "the publisher sent " << got << " of " << target << " in 20 s: " << pub->err());
    }
    REQUIRE(pub->running());
    ::kill(pub->pid(), SIGSTOP);
    int st = 0;
    REQUIRE(::waitpid(pub->pid(), &st, WUNTRACED) == pub->pid());
    REQUIRE(WIFSTOPPED(st));
    fs.cut(tear ? std::optional(tear_seed) : std::nullopt);
    // What was sent before the stop may still be on its way: it counts as seen.
    while (live.drain(100ms) > 0) ++got;
    pub->kill(SIGKILL);
    (void)pub->wait(10s);
    fs.remount();
    // The machine comes back as a new boot (the sequence mark tells a reboot from a process
    // crash by the boot id; a mark that never reached the disk has none to change).
    next_boot(log_dir + "/sequence.mark");
    total_seen += got;
  }

  // The last incarnation publishes 20 messages on what survived; a durable subscriber reads
  // the log from its start.
  auto last = start_publisher(work, ep, log_dir, fsync, cuts, {"--count", "20"});
  rill::Node node;
  std::filesystem::create_directories(work.path() / "state");
  std::map<std::uint64_t, std::string> replay;
  std::uint64_t lost = 0;
  std::vector<rill::LossEvent> losses;
  auto durable = node.subscriber({.endpoints = {ep},
                                  .prefix = "pl/",
                                  .policy = rill::Policy::backpressure(1024),
                                  .on_loss = [&](const rill::LossEvent& e) {
                                    losses.push_back(e);
                                    lost += e.last - e.first + 1;
                                  },
                                  .durability = rill::Durability::persistent(),
                                  .durable_name = "check",
                                  .from = rill::StartFrom::start,
                                  .state_dir = (work.path() / "state").string()});
  REQUIRE_MESSAGE(durable, (durable ? "" : durable.error().message()));
  const std::string final_payload = "inc" + std::to_string(cuts);
  std::uint64_t finals = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (finals < 20 && std::chrono::steady_clock::now() < deadline) {
    durable->wait_poll(
        [&](const rill::MessageView& m) {
          REQUIRE_MESSAGE(replay.emplace(m.sequence(), std::string(m.payload_text())).second,
                          "sequence " << m.sequence() << " delivered twice");
          finals += m.payload_text() == final_payload;
        },
        1024, 5ms);
  }
  INFO("last publisher: " << last->err());
  REQUIRE(finals == 20);
  // Everything before the last incarnation's messages arrived in order before them.
  const std::uint64_t last_seq = replay.rbegin()->first;

  // Held against what was seen live.
  std::uint64_t missing = 0;
  std::map<std::string, std::uint64_t> missing_by_incarnation;
  for (const auto& [seq, payload] : seen) {
    const auto it = replay.find(seq);
    if (it == replay.end()) {
      ++missing;
      ++missing_by_incarnation[payload];
      continue;
    }
    CHECK_MESSAGE(it->second == payload, "sequence " << seq << " was seen live as " << payload << " and is in the log as "
                                                     << it->second << ": a number handed out twice");
  }
  // Every number up to the last is either in the log or reported lost: nothing silent.
  CHECK(replay.size() + lost == last_seq);
  MESSAGE("fsync " << fsync << ": " << cuts << " cuts, " << total_seen << " messages seen live, " << missing
                   << " of them lost by the cuts, " << lost << " numbers reported lost, log holds " << replay.size());
  if (fsync == "always") {
    CHECK(missing == 0);
    CHECK(lost == 0);
  } else if (fsync == "never") {
    CHECK_MESSAGE(missing > 0, "no cut lost a message seen live: the harness has no teeth");
  }
  std::uint64_t worst = 0;
  for (const auto& [inc, n] : missing_by_incarnation) worst = std::max(worst, n);
  MESSAGE("most lost by one cut: " << worst);
  if (window) {
    // Per cut, what is lost was sent within MS ms plus one fdatasync before the cut (the
    // fdatasync is given 250 ms here, far above the 17 ms the worst cut took in our runs on a
    // loaded 2-core machine), at the publisher's rate. Incarnations send up to 6,000
    // messages and a segment holds about 6,500, so a log synced only at segment ends (as
    // under `never`, whose cuts lost up to 1,600 with smaller segments) would fail this.
    const auto bound = static_cast<std::uint64_t>(static_cast<double>(rate) * (static_cast<double>(window->count()) + 250.0) / 1000.0);
    CHECK_MESSAGE(worst <= bound, "a cut lost " << worst << " messages seen live; the window allows " << bound);
  }
  CHECK(total_seen > 0);
}

}  // namespace

int main(int argc, char** argv) {
  if (const int skip = lazyfs::unavailable(); skip != 0) return skip;
  doctest::Context ctx(argc, argv);
  return ctx.run();
}

TEST_CASE("durable publisher, fsync always: after power cuts every message seen live is in the log, no gap") {
  run("always", cuts_from_env(8), rilltest::test_seed(), std::nullopt);
}

TEST_CASE("durable publisher, fsync every:20: after power cuts no number is handed out twice, losses are gaps") {
  run("every:20", cuts_from_env(8), rilltest::test_seed() + 1, 20ms);
}

TEST_CASE("durable publisher, fsync never: power cuts lose messages seen live, reported as gaps, never reused") {
  run("never", cuts_from_env(6), rilltest::test_seed() + 2, std::nullopt);
}
