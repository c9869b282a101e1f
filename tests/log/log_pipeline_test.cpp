// fsync always with pipelined syncs (two batches' fdatasyncs in flight at once): appenders
// from many threads, a live reader, and a failed sync injected through the test hook.
#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "log_checks.hpp"
#include "log_test_util.hpp"
#include "policies/log/log_core.hpp"
#include "rill/log.hpp"

using namespace logtest;
using rill::Log;
namespace fs = std::filesystem;

namespace {

std::atomic<int> g_syncs{0};
std::atomic<int> g_fail_at{0};  ///< the pipelined sync (1-based) that reports EIO; 0: none

int fail_one_sync(int res) {
  return ++g_syncs == g_fail_at.load() ? -EIO : res;
}

struct HookGuard {
  explicit HookGuard(int fail_at) {
    g_syncs = 0;
    g_fail_at = fail_at;
    rill::detail::pipelined_sync_hook = &fail_one_sync;
  }
  ~HookGuard() { rill::detail::pipelined_sync_hook = nullptr; }
  HookGuard(const HookGuard&) = delete;
  HookGuard& operator=(const HookGuard&) = delete;
};

/// Reads the whole log: sequence -> body.
std::map<std::uint64_t, std::string> contents(const Log& log) {
  std::map<std::uint64_t, std::string> out;
  auto rd = log.reader(1);
  REQUIRE(rd.has_value());
  for (;;) {
    auto rec = rd->next();
    REQUIRE_MESSAGE(rec.has_value(), rec.error().message());
    if (!*rec) break;
    out.emplace((*rec)->sequence, std::string(text_of((*rec)->body)));
  }
  return out;
}

}  // namespace

TEST_CASE("fsync always, pipelined syncs: a failed sync fails its batch and all after it; nothing of them is seen") {
  TempDir dir;
  // Big segments: no roll, so every batch goes through the pipeline.
  const rill::LogOptions opts{.fsync = rill::FsyncPolicy::always(), .segment_bytes = 8u << 20};
  constexpr int threads = 8;
  constexpr int per = 150;
  HookGuard hook(25);
  std::map<std::uint64_t, std::string> acked;  // what append() said is durable
  std::vector<rill::Error> errors;
  std::map<std::uint64_t, std::string> seen;  // what a live reader saw
  {
    auto log = Log::open(dir.path(), opts);
    REQUIRE(log.has_value());
    std::mutex m;
    std::atomic<bool> writing{true};
    std::thread reader([&] {
      auto rd = log->reader(1);
      REQUIRE(rd.has_value());
      while (writing.load() || rd->position() <= log->last_sequence()) {
        (void)rd->wait(std::chrono::milliseconds(20));
        for (;;) {
          auto rec = rd->next();
          REQUIRE_MESSAGE(rec.has_value(), rec.error().message());
          if (!*rec) break;
          seen.emplace((*rec)->sequence, std::string(text_of((*rec)->body)));
        }
      }
    });
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < per; ++i) {
          const std::string body = "thread " + std::to_string(t) + " record " + std::to_string(i);
          auto r = log->append(bytes_of(body));
          std::lock_guard g(m);
          if (r) {
            acked.emplace(*r, body);
          } else {
            errors.push_back(r.error());
          }
        }
      });
    }
    for (auto& t : ts) t.join();
    writing = false;
    reader.join();
    const auto st = log->stats();
    MESSAGE("always, pipelined: " << st.appends << " appends in " << st.batches << " writes, " << st.fsyncs
                                  << " fsyncs; " << errors.size() << " appends failed with the injected EIO");
    REQUIRE(g_syncs.load() >= 25);  // the injected failure happened
    REQUIRE(!errors.empty());
    for (const auto& e : errors) {
      CHECK(e.code == rill::Errc::io_error);
      CHECK(e.message().find("fdatasync") != std::string::npos);
    }
    CHECK(acked.size() + errors.size() == threads * per);
    // Gapless: the failed sequences were handed out again.
    REQUIRE(!acked.empty());
    CHECK(acked.begin()->first == 1);
    CHECK(acked.rbegin()->first == acked.size());
    CHECK(contents(*log) == acked);
    // Visible means durable: the reader saw nothing that failed (those sequences now hold
    // other records), and everything it saw is what the log holds.
    CHECK(seen == acked);
    REQUIRE(log->close().has_value());
  }
  auto log = Log::open(dir.path(), opts);
  REQUIRE(log.has_value());
  CHECK_FALSE(log->recovery().torn_tail);  // the failed batches were cut from the file
  CHECK(contents(*log) == acked);
}

TEST_CASE("fsync always, pipelined syncs: sixteen appenders, every acknowledged record durable once, in order") {
  TempDir dir;
  // Small segments: rolls (which drain the pipeline) interleave with pipelined batches.
  const rill::LogOptions opts{.fsync = rill::FsyncPolicy::always(), .segment_bytes = 16u << 10};
  constexpr int threads = 16;
  constexpr int per = 100;
  std::vector<std::vector<std::uint64_t>> got(threads);
  std::map<std::uint64_t, std::string> acked;
  std::mutex m;
  {
    auto log = Log::open(dir.path(), opts);
    REQUIRE(log.has_value());
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < per; ++i) {
          const std::string body = "thread " + std::to_string(t) + " record " + std::to_string(i);
          auto r = log->append(bytes_of(body));
          if (!r) return;
          if (log->last_sequence() < *r) return;  // returned: visible (and durable) already
          got[static_cast<std::size_t>(t)].push_back(*r);
          std::lock_guard g(m);
          acked.emplace(*r, body);
        }
      });
    }
    for (auto& t : ts) t.join();
    for (const auto& g : got) {
      CHECK(g.size() == per);
      CHECK(std::is_sorted(g.begin(), g.end()));  // one thread's appends are ordered
    }
    CHECK(acked.size() == threads * per);
    CHECK(acked.rbegin()->first == threads * per);
    const auto st = log->stats();
    MESSAGE("always, 16 appenders: " << st.appends << " appends in " << st.batches << " writes over "
                                     << log->segments().size() << " segments");
    CHECK(st.batches < st.appends);  // group commit
    CHECK(log->segments().size() > 5);
    REQUIRE(log->close().has_value());
  }
  auto log = Log::open(dir.path(), opts);
  REQUIRE(log.has_value());
  CHECK_FALSE(log->recovery().torn_tail);
  CHECK(contents(*log) == acked);
}
