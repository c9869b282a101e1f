// Disk full, on a 1 MiB tmpfs this test mounts itself (root needed; exits 77 = skipped
// otherwise): appends fail with Errc::no_space, nothing already stored is damaged, and
// appends succeed again, gaplessly, once space is freed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include "log_test_util.hpp"
#include "rill/log.hpp"

namespace fs = std::filesystem;
using namespace logtest;

namespace {

fs::path g_mnt;

// Bodies of every append that returned success, by sequence, must read back intact.
void check_intact(const fs::path& dir, const std::map<std::uint64_t, std::string>& ok) {
  auto log = rill::Log::open(dir, {.segment_bytes = 64u << 10, .read_only = true});
  REQUIRE_MESSAGE(log.has_value(), log.error().message());
  CHECK_FALSE(log->recovery().torn_tail);
  auto rd = log->reader(1);
  REQUIRE(rd.has_value());
  std::uint64_t n = 0;
  for (;;) {
    auto rec = rd->next();
    REQUIRE_MESSAGE(rec.has_value(), rec.error().message());
    if (!*rec) break;
    ++n;
    auto it = ok.find((*rec)->sequence);
    if (it != ok.end()) CHECK(text_of((*rec)->body) == it->second);
  }
  CHECK(n >= ok.size());
  if (!ok.empty()) CHECK(log->last_sequence() >= ok.rbegin()->first);
}

void fill_disk_and_recover(rill::FsyncPolicy policy) {
  const fs::path dir = g_mnt / "log";
  const fs::path filler = g_mnt / "filler";
  fs::remove_all(dir);
  fs::remove(filler);
  // Reserve space to free later.
  {
    std::ofstream f(filler, std::ios::binary);
    const std::string chunk(300u << 10, 'f');
    f << chunk;
  }
  auto log = rill::Log::open(dir, {.fsync = policy, .segment_bytes = 64u << 10, .buffer_bytes = 16u << 10});
  REQUIRE_MESSAGE(log.has_value(), log.error().message());
  std::map<std::uint64_t, std::string> ok;
  rill::Error err;
  for (int i = 0; i < 10000; ++i) {
    const auto body = body_for(log->next_sequence(), 1000);
    auto r = log->append(bytes_of(body));
    if (!r) {
      err = r.error();
      break;
    }
    ok[*r] = body;
  }
  REQUIRE_MESSAGE(err.code == rill::Errc::no_space, "no no_space error: " << err.message());
  MESSAGE(rill::to_string(policy) << ": " << ok.size() << " appends before: " << err.message());
  CHECK(log->stats().no_space_errors >= 1);
  // Everything acknowledged is stored (under every/never some of it may still be queued in the
  // log's buffer: those are written once space is freed, checked below).
  if (policy.mode == rill::FsyncMode::always) check_intact(dir, ok);

  // Still full: still refused, and nothing stored changes.
  auto again = log->append(bytes_of(body_for(0, 1000)));
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error().code == rill::Errc::no_space);

  fs::remove(filler);
  // Appends resume (under every/never once the writer's retry has gone through).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  rill::Result<std::uint64_t> r = rill::fail(rill::Errc::no_space);
  std::string body;
  while (!r && std::chrono::steady_clock::now() < deadline) {
    body = body_for(log->next_sequence(), 1000);
    r = log->append(bytes_of(body));
    if (!r) {
      REQUIRE(r.error().code == rill::Errc::no_space);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  REQUIRE_MESSAGE(r.has_value(), r.error().message());
  CHECK(*r == ok.rbegin()->first + 1);  // gapless: the failed appends took no sequence
  ok[*r] = body;
  for (int i = 0; i < 20; ++i) {
    body = body_for(log->next_sequence(), 1000);
    auto more = log->append(bytes_of(body));
    REQUIRE_MESSAGE(more.has_value(), more.error().message());
    ok[*more] = body;
  }
  REQUIRE(log->sync().has_value());
  check_intact(dir, ok);
  REQUIRE(log->close().has_value());
  auto reopened = rill::Log::open(dir, {.segment_bytes = 64u << 10});
  REQUIRE_MESSAGE(reopened.has_value(), reopened.error().message());
  CHECK(reopened->next_sequence() == ok.rbegin()->first + 1);
}

}  // namespace

TEST_CASE("disk full under fsync always: explicit no_space, nothing damaged, appends resume") {
  fill_disk_and_recover(rill::FsyncPolicy::always());
}

TEST_CASE("disk full under fsync every:5: buffered appends are kept and written once space is freed") {
  fill_disk_and_recover(rill::FsyncPolicy::every(std::chrono::milliseconds(5)));
}

int main(int argc, char** argv) {
  TempDir dir;
  g_mnt = dir / "mnt";
  fs::create_directories(g_mnt);
  if (::mount("tmpfs", g_mnt.c_str(), "tmpfs", 0, "size=1m") != 0) {
    std::printf("SKIPPED: cannot mount a 1 MiB tmpfs at %s (%s); the disk-full test needs root\n", g_mnt.c_str(),
                std::strerror(errno));
    return 77;
  }
  doctest::Context ctx(argc, argv);
  const int rc = ctx.run();
  ::umount2(g_mnt.c_str(), MNT_DETACH);
  return rc;
}
