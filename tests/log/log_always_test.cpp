// The log under fsync `always`, where appenders hand their records to the writer thread and
// sleep until it has written, synced and settled them: each record lands under the sequence
// its appender was given, across segment rolls and a buffer smaller than one round;
// expect_sequence is checked at the writer; close() with appenders waiting settles every one.
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "log_checks.hpp"
#include "log_test_util.hpp"
#include "rill/log.hpp"

using namespace logtest;
using rill::Errc;
using rill::Log;
using rill::LogOptions;

namespace {

std::string body_of(int thread, int i) {
  return "thread " + std::to_string(thread) + " append " + std::to_string(i) + std::string(40, '.');
}

/// Every record of the log by sequence; the sequences must run gaplessly from 1.
std::map<std::uint64_t, std::string> records_of(const Log& log) {
  std::map<std::uint64_t, std::string> out;
  auto r = log.reader(0);
  REQUIRE(r.has_value());
  for (;;) {
    auto rec = r->next();
    REQUIRE_MESSAGE(rec.has_value(), rec.error().message());
    if (!*rec) break;
    CHECK((*rec)->sequence == out.size() + 1);
    out.emplace((*rec)->sequence, std::string(text_of((*rec)->body)));
  }
  return out;
}

}  // namespace

TEST_CASE("fsync always: 16 appenders over segment rolls and a small buffer; each body under its sequence") {
  TempDir dir;
  LogOptions opts = small(rill::FsyncPolicy::always());  // 4 KiB segments: a roll every ~40 records
  opts.buffer_bytes = 600;  // fewer than 16 records: the rest of a round waits for the next batch
  constexpr int threads = 16;
  constexpr int per = 60;
  std::map<std::uint64_t, std::string> expected;
  std::uint64_t batches = 0;
  {
    auto log = Log::open(dir.path(), opts);
    REQUIRE(log.has_value());
    std::vector<std::vector<std::pair<std::uint64_t, std::string>>> got(threads);
    std::atomic<int> errors{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < per; ++i) {
          auto body = body_of(t, i);
          auto r = log->append(bytes_of(body));
          if (!r) {
            ++errors;
            return;
          }
          if (log->last_sequence() < *r) ++errors;  // durable, so visible, before the return
          got[t].emplace_back(*r, std::move(body));
        }
      });
    }
    for (auto& t : ts) t.join();
    CHECK(errors == 0);
    for (const auto& g : got) {
      for (std::size_t i = 1; i < g.size(); ++i) CHECK(g[i].first > g[i - 1].first);  // one thread's appends in order
      for (const auto& [seq, body] : g) CHECK(expected.emplace(seq, body).second);    // no sequence given twice
    }
    const auto st = log->stats();
    batches = st.batches;
    CHECK(st.appends == threads * per);
    CHECK(log->segments().size() > 10);
    // Live, and after reopen: exactly the appended records, each under the sequence returned for it.
    CHECK(records_of(*log) == expected);
  }
  MESSAGE("always, 16 appenders, 600-byte buffer: " << threads * per << " appends in " << batches << " writes");
  auto log = Log::open(dir.path(), opts);
  REQUIRE(log.has_value());
  CHECK_FALSE(log->recovery().torn_tail);
  CHECK(records_of(*log) == expected);
  CHECK(log->next_sequence() == threads * per + 1);
}

TEST_CASE("fsync always: expect_sequence is checked where the record is sequenced") {
  TempDir dir;
  auto log = Log::open(dir.path(), small(rill::FsyncPolicy::always()));
  REQUIRE(log.has_value());
  REQUIRE(log->append(bytes_of("first")).has_value());
  auto bad = log->append(bytes_of("out of turn"), {.expect_sequence = 5});
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code == Errc::invalid_argument);
  CHECK(bad.error().detail.find("expected to append sequence 5 but the log is at 2") != std::string::npos);
  auto good = log->append(bytes_of("second"), {.expect_sequence = 2});
  REQUIRE(good.has_value());
  CHECK(*good == 2);
  const auto all = records_of(*log);
  REQUIRE(all.size() == 2);
  CHECK(all.at(2) == "second");
}

TEST_CASE("fsync always: close() with appenders waiting settles each: written, or closed, never lost or hung") {
  TempDir dir;
  const auto opts = small(rill::FsyncPolicy::always());
  constexpr int threads = 8;
  std::vector<std::vector<std::uint64_t>> got(threads);
  std::vector<std::optional<Errc>> last(threads);
  {
    auto log = Log::open(dir.path(), opts);
    REQUIRE(log.has_value());
    std::atomic<std::uint64_t> appended{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0;; ++i) {
          const auto body = body_of(t, i);
          auto r = log->append(bytes_of(body));
          if (!r) {
            last[t] = r.error().code;
            return;
          }
          got[t].push_back(*r);
          ++appended;
        }
      });
    }
    // Close while they run: it waits for nothing but the writer to finish what it took.
    while (appended.load() < 400) std::this_thread::yield();
    REQUIRE(log->close().has_value());
    for (auto& t : ts) t.join();
  }
  std::uint64_t returned = 0;
  for (int t = 0; t < threads; ++t) {
    CHECK(last[t] == Errc::closed);
    returned += got[t].size();
  }
  // Every append that returned a sequence is in the log; a record is there only if its append returned.
  auto log = Log::open(dir.path(), opts);
  REQUIRE(log.has_value());
  const auto all = records_of(*log);
  CHECK(all.size() == returned);
  for (int t = 0; t < threads; ++t) {
    for (std::size_t i = 0; i < got[t].size(); ++i) {
      REQUIRE(all.contains(got[t][i]));
      CHECK(all.at(got[t][i]) == body_of(t, static_cast<int>(i)));
    }
  }
}
