// The consumer-group ledger: what one member finished is skipped by another, a member that
// died inside its handler leaves its message in doubt, a live member is waited for, and
// what the ledger cannot track is said so rather than guessed.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "policies/durability/group_ledger.hpp"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <thread>

#include "temp_dir.hpp"

using rill::detail::GroupLedger;
using rilltest::TempDir;
using Verdict = GroupLedger::Verdict;

namespace {

GroupLedger open_ledger(const TempDir& dir) {
  auto g = GroupLedger::open(dir.path(), "g");
  REQUIRE(g.has_value());
  return std::move(*g);
}

}  // namespace

TEST_CASE("a message one member finished is skipped by the others; one nobody had is handled") {
  TempDir dir;
  auto a = open_ledger(dir);
  auto b = open_ledger(dir);
  CHECK(a.member() != b.member());
  auto c = a.begin(7, 100);
  REQUIRE(c.verdict == Verdict::handle);
  a.finish(c);
  CHECK(b.begin(7, 100).verdict == Verdict::done);
  CHECK(a.begin(7, 100).verdict == Verdict::done);
  // Another publisher's same sequence is another message.
  auto other = b.begin(8, 100);
  CHECK(other.verdict == Verdict::handle);
  b.finish(other);
  CHECK(b.begin(7, 101).verdict == Verdict::handle);
  CHECK(a.sync().has_value());
}

TEST_CASE("a member killed inside its handler leaves that message in doubt; what it finished is done") {
  TempDir dir;
  { auto created = open_ledger(dir); }
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto g = GroupLedger::open(dir.path(), "g");
    if (!g) ::_exit(2);
    auto done = g->begin(1, 41);
    g->finish(done);
    (void)g->begin(1, 42);  // "inside the handler" when it dies
    ::raise(SIGKILL);
    ::_exit(3);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  auto survivor = open_ledger(dir);
  CHECK(survivor.begin(1, 41).verdict == Verdict::done);
  auto doubt = survivor.begin(1, 42);
  CHECK(doubt.verdict == Verdict::in_doubt);
  survivor.finish(doubt);  // the survivor handled it again: now it is done for everyone
  auto late = open_ledger(dir);
  CHECK(late.begin(1, 42).verdict == Verdict::done);
}

TEST_CASE("a live member still inside its handler is waited for") {
  TempDir dir;
  auto a = open_ledger(dir);
  auto b = open_ledger(dir);
  auto claim = a.begin(3, 9);
  REQUIRE(claim.verdict == Verdict::handle);
  std::atomic<bool> returned{false};
  Verdict seen = Verdict::handle;
  std::thread waiter([&] {
    seen = b.begin(3, 9).verdict;
    returned = true;
  });
  // a finishes only once b has seen a live and started waiting, however late the thread
  // starts; b's own wait gives up after 10 s, so 5 s here fails first if b never waits.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (b.live_waits() == 0 && !returned && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const bool waited = b.live_waits() == 1;
  const bool returned_early = returned.load();
  a.finish(claim);
  waiter.join();
  CHECK(waited);
  CHECK_FALSE(returned_early);  // b was still blocked on a when a finished
  CHECK(seen == Verdict::done);
  CHECK(b.live_waits() == 1);
}

TEST_CASE("a member that left cleanly leaves its slot to the next; its unfinished claim is in doubt") {
  TempDir dir;
  auto keep = open_ledger(dir);
  std::uint32_t slot = 0;
  {
    auto gone = open_ledger(dir);
    slot = gone.member();
    (void)gone.begin(5, 1);
  }
  auto next = open_ledger(dir);
  CHECK(next.member() == slot);  // reused, with a new generation
  CHECK(keep.begin(5, 1).verdict == Verdict::in_doubt);
}

TEST_CASE("what the ledger cannot track is untracked, never a guess") {
  TempDir dir;
  auto g = open_ledger(dir);
  auto newer = g.begin(1, 1 + GroupLedger::window);
  g.finish(newer);
  CHECK(g.begin(1, 1).verdict == Verdict::untracked);  // a window behind: its cell is taken
  for (std::uint64_t id = 100; id < 100 + GroupLedger::publishers - 1; ++id) g.finish(g.begin(id, 1));
  CHECK(g.begin(999, 1).verdict == Verdict::untracked);  // publisher table full
}

TEST_CASE("a file that is not a group ledger is refused, naming it") {
  TempDir dir;
  { std::ofstream(dir.path() / "g.rill-group") << "not a ledger"; }
  auto g = GroupLedger::open(dir.path(), "g");
  REQUIRE_FALSE(g.has_value());
  CHECK(g.error().message().find("g.rill-group") != std::string::npos);
}
