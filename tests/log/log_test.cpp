// The persistent log's behaviour: append/read, rolling, seeking, reopening, fsync policies,
// group commit, retention, recovery of torn tails and refusal of corruption, ack store, DLQ.
#include "rill/log.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <fstream>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "log_checks.hpp"
#include "log_test_util.hpp"
#include "policies/log/crc32c.hpp"
#include "rill/ack_store.hpp"
#include "rill/codec.hpp"
#include "rill/dead_letter.hpp"
#include "rill/message_builder.hpp"
#include "../test_seed.hpp"

using namespace logtest;
using rill::Errc;
using rill::Log;
using rill::LogOptions;
namespace fs = std::filesystem;

namespace {

void flip_byte(const fs::path& file, std::uint64_t offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c ^= 0x20;
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

}  // namespace

TEST_CASE("crc32c matches the RFC 3720 check value, in hardware and in the table fallback") {
  const auto check = bytes_of("123456789");
  CHECK(rill::detail::crc32c(0, check) == 0xE3069283u);
  CHECK(rill::detail::crc32c_portable(0, check) == 0xE3069283u);
  std::mt19937_64 rng(rilltest::test_seed());
  std::vector<std::byte> buf(4099);
  for (auto& b : buf) b = static_cast<std::byte>(rng());
  for (std::size_t len : {0u, 1u, 7u, 8u, 9u, 63u, 4099u}) {
    const auto s = std::span<const std::byte>(buf).first(len);
    CHECK(rill::detail::crc32c(0, s) == rill::detail::crc32c_portable(0, s));
    // Incremental use equals one pass.
    CHECK(rill::detail::crc32c(rill::detail::crc32c(0, s.first(len / 2)), s.subspan(len / 2)) ==
          rill::detail::crc32c(0, s));
  }
}

TEST_CASE("records appended are read back in order, in place, with their fields") {
  TempDir dir;
  auto log = Log::open(dir.path(), small());
  REQUIRE(log.has_value());
  CHECK(log->next_sequence() == 1);
  auto r1 = log->append(bytes_of("record 1 hello"), {.timestamp_ns = 42, .publisher_id = 7});
  REQUIRE(r1.has_value());
  CHECK(*r1 == 1);
  append_n(*log, 99);
  REQUIRE(log->flush().has_value());
  auto rd = log->reader(1);
  REQUIRE(rd.has_value());
  auto first = rd->next();
  REQUIRE(first.has_value());
  REQUIRE(first->has_value());
  CHECK((*first)->sequence == 1);
  CHECK((*first)->timestamp_ns == 42);
  CHECK((*first)->publisher_id == 7);
  CHECK(text_of((*first)->body) == "record 1 hello");
  const auto all = read_all(*log);
  REQUIRE(all.size() == 100);
  for (std::size_t i = 0; i < all.size(); ++i) CHECK(all[i] == i + 1);
  CHECK(log->last_sequence() == 100);
}

TEST_CASE("segments roll by size; readers cross them; a reopened log continues id and sequence") {
  TempDir dir;
  std::uint64_t id = 0;
  {
    auto log = Log::open(dir.path(), small());
    REQUIRE(log.has_value());
    id = log->publisher_id();
    CHECK(id != 0);
    append_n(*log, 300, 100);
    REQUIRE(log->flush().has_value());
    CHECK(log->segments().size() > 5);
    for (const auto& s : log->segments()) CHECK(s.bytes <= 4096);
    CHECK(read_all(*log).size() == 300);
    REQUIRE(log->close().has_value());
  }
  auto log = Log::open(dir.path(), small());
  REQUIRE(log.has_value());
  CHECK(log->publisher_id() == id);
  CHECK(log->next_sequence() == 301);
  CHECK(log->recovery().records_scanned == 0);  // clean close: every checkpoint covered its segment
  CHECK_FALSE(log->recovery().torn_tail);
  auto bad = log->append(bytes_of("x"), {.expect_sequence = 5});
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code == Errc::invalid_argument);
  auto good = log->append(bytes_of(body_for(301)), {.expect_sequence = 301});
  REQUIRE(good.has_value());
  CHECK(*good == 301);
  REQUIRE(log->flush().has_value());
  const auto all = read_all(*log);
  REQUIRE(all.size() == 301);
  CHECK(all.back() == 301);
}

TEST_CASE("a record larger than a segment gets a segment of its own and reads back whole") {
  TempDir dir;
  auto log = Log::open(dir.path(), small());
  REQUIRE(log.has_value());
  append_n(*log, 3, 100);
  append_n(*log, 1, 20000);
  append_n(*log, 3, 100);
  REQUIRE(log->flush().has_value());
  auto rd = log->reader(4);
  REQUIRE(rd.has_value());
  auto rec = rd->next();
  REQUIRE(rec.has_value());
  REQUIRE(rec->has_value());
  CHECK((*rec)->body.size() == 20000);
  CHECK(read_all(*log).size() == 7);
}

TEST_CASE("seek by sequence and by time lands on the exact record, through the sparse index") {
  TempDir dir;
  auto log = Log::open(dir.path(), small());
  REQUIRE(log.has_value());
  const std::int64_t t0 = 1'000'000'000;
  append_n(*log, 500, 60, t0);  // record n has timestamp t0 + n*1000
  REQUIRE(log->flush().has_value());
  auto rd = log->reader();
  REQUIRE(rd.has_value());
  for (std::uint64_t s : {1u, 2u, 137u, 255u, 256u, 499u, 500u}) {
    REQUIRE(rd->seek(s).has_value());
    auto rec = rd->next();
    REQUIRE(rec.has_value());
    REQUIRE(rec->has_value());
    CHECK((*rec)->sequence == s);
  }
  for (std::uint64_t s : {1u, 100u, 333u, 500u}) {
    REQUIRE(rd->seek_time(t0 + static_cast<std::int64_t>(s) * 1000 - 1).has_value());
    auto rec = rd->next();
    REQUIRE(rec.has_value());
    REQUIRE(rec->has_value());
    CHECK((*rec)->sequence == s);
  }
  REQUIRE(rd->seek_time(t0 + 501 * 1000).has_value());  // after the last: positioned at the end
  auto none = rd->next();
  REQUIRE(none.has_value());
  CHECK_FALSE(none->has_value());
  CHECK(rd->position() == 501);
}

TEST_CASE("fsync always: a returned append is visible and synced; concurrent appends share fsyncs") {
  TempDir dir;
  auto log = Log::open(dir.path(), small(rill::FsyncPolicy::always()));
  REQUIRE(log.has_value());
  auto one = log->append(bytes_of(body_for(1)));
  REQUIRE(one.has_value());
  CHECK(log->last_sequence() == 1);  // visible means synced under always
  CHECK(log->stats().fsyncs >= 1);

  constexpr int threads = 8;
  constexpr int per = 100;
  std::vector<std::thread> ts;
  std::vector<std::vector<std::uint64_t>> got(threads);
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < per; ++i) {
        auto r = log->append(bytes_of("record ?"));
        if (!r) return;
        // Durable before the return: the log already shows it.
        if (log->last_sequence() < *r) return;
        got[t].push_back(*r);
      }
    });
  }
  for (auto& t : ts) t.join();
  std::set<std::uint64_t> all{1};
  for (const auto& g : got) {
    CHECK(g.size() == per);
    all.insert(g.begin(), g.end());
  }
  CHECK(all.size() == threads * per + 1);
  CHECK(*all.rbegin() == threads * per + 1);
  const auto st = log->stats();
  MESSAGE("always: " << st.appends << " appends in " << st.batches << " writes, " << st.fsyncs << " fsyncs");
  CHECK(st.fsyncs < st.appends);  // group commit: one fsync served several appenders
}

TEST_CASE("fsync every:MS syncs on its own within the interval; never syncs only on request") {
  TempDir dir;
  SUBCASE("every:5") {
    auto log = Log::open(dir.path(), small(rill::FsyncPolicy::every(std::chrono::milliseconds(5))));
    REQUIRE(log.has_value());
    append_n(*log, 100);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (log->stats().fsyncs == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    CHECK(log->stats().fsyncs >= 1);
  }
  SUBCASE("never") {
    auto log = Log::open(dir.path(), small(rill::FsyncPolicy::never()));
    REQUIRE(log.has_value());
    append_n(*log, 20);  // stays inside the first segment: no roll, so no sealing fsync
    REQUIRE(log->flush().has_value());
    CHECK(log->last_sequence() == 20);
    CHECK(log->stats().fsyncs == 0);
    REQUIRE(log->sync().has_value());
    CHECK(log->stats().fsyncs == 1);
  }
}

TEST_CASE("fsync every:MS: background fdatasyncs beside the writes, sync() and segment rolls") {
  // The periodic fdatasync runs while the writer goes on writing; sync() (inline) and the
  // sealing sync of a roll interleave with it. Every sync() returns, nothing is lost or doubled.
  TempDir dir;
  auto opts = small(rill::FsyncPolicy::every(std::chrono::milliseconds(2)));
  opts.segment_bytes = 64u << 10;
  constexpr std::uint64_t n = 20'000;
  {
    auto log = Log::open(dir.path(), opts);
    REQUIRE(log.has_value());
    std::atomic<bool> done{false};
    std::atomic<int> syncs{0};
    std::atomic<int> sync_errors{0};
    std::thread syncer([&] {
      while (!done.load()) {
        if (auto s = log->sync(); s) {
          syncs.fetch_add(1);
        } else {
          sync_errors.fetch_add(1);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // room for background syncs between
      }
    });
    for (std::uint64_t i = 1; i <= n; ++i) {
      auto r = log->append(bytes_of(body_for(i, 100)));
      if (!r) FAIL(r.error().message());
      if (i % 2000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(3));  // let periodic syncs run
    }
    done = true;
    syncer.join();
    CHECK(sync_errors.load() == 0);
    CHECK(syncs.load() > 0);
    const auto st = log->stats();
    MESSAGE(syncs.load() << " sync() calls, " << st.fsyncs << " fdatasyncs, " << st.batches << " writes");
    CHECK(st.fsyncs >= 1);
    REQUIRE(log->close().has_value());
  }
  auto log = Log::open(dir.path(), opts);
  REQUIRE(log.has_value());
  CHECK_FALSE(log->recovery().torn_tail);
  const auto seqs = read_all(*log);
  REQUIRE(seqs.size() == n);
  for (std::uint64_t i = 0; i < n; ++i) CHECK(seqs[i] == i + 1);
}

TEST_CASE("a live reader waits for new records and wakes when one is appended") {
  TempDir dir;
  auto log = Log::open(dir.path(), small());
  REQUIRE(log.has_value());
  auto rd = log->reader(1);
  REQUIRE(rd.has_value());
  auto w0 = rd->wait(std::chrono::milliseconds(1));
  REQUIRE(w0.has_value());
  CHECK_FALSE(*w0);
  std::thread appender([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    (void)log->append(bytes_of(body_for(1)));
  });
  auto w = rd->wait(std::chrono::seconds(20));
  appender.join();
  REQUIRE(w.has_value());
  CHECK(*w);
  auto rec = rd->next();
  REQUIRE(rec.has_value());
  REQUIRE(rec->has_value());
  CHECK((*rec)->sequence == 1);
}

TEST_CASE("a read-only log in another handle follows appends and rolls (the rill log tail path)") {
  TempDir dir;
  auto log = Log::open(dir.path(), small());
  REQUIRE(log.has_value());
  append_n(*log, 5, 100);
  REQUIRE(log->flush().has_value());
  auto ro = Log::open(dir.path(), {.segment_bytes = 4096, .read_only = true});
  REQUIRE(ro.has_value());
  CHECK(ro->last_sequence() == 5);
  auto rd = ro->reader(1);
  REQUIRE(rd.has_value());
  append_n(*log, 100, 100);  // several rolls
  REQUIRE(log->flush().has_value());
  std::uint64_t n = 0;
  while (n < 105) {
    auto w = rd->wait(std::chrono::seconds(10));
    REQUIRE(w.has_value());
    REQUIRE(*w);
    for (;;) {
      auto rec = rd->next();
      REQUIRE(rec.has_value());
      if (!*rec) break;
      CHECK((*rec)->sequence == ++n);
    }
  }
  CHECK(n == 105);
  auto second = Log::open(dir.path(), small());
  REQUIRE_FALSE(second.has_value());  // one writer per directory
  CHECK(second.error().code == Errc::address_in_use);
}

TEST_CASE("retention deletes whole old segments by size and by age; readers are told what they lost") {
  TempDir dir;
  SUBCASE("by size") {
    auto opts = small();
    opts.retention_bytes = 3 * 4096;
    auto log = Log::open(dir.path(), opts);
    REQUIRE(log.has_value());
    auto early = log->reader(1);
    REQUIRE(early.has_value());
    auto r1 = early->next();  // nothing yet
    REQUIRE(r1.has_value());
    append_n(*log, 400, 100);
    REQUIRE(log->flush().has_value());
    const auto first = log->first_sequence();
    CHECK(first > 1);
    CHECK(log->segments().size() <= 4);
    CHECK(log->stats().segments_deleted > 0);
    std::uint64_t lost = 0;
    const auto seqs = read_all(*log, 1, &lost);
    CHECK(lost == first - 1);
    REQUIRE_FALSE(seqs.empty());
    CHECK(seqs.front() == first);
    CHECK(seqs.back() == 400);
    // The reader created before: whatever it read plus what it lost is everything.
    std::uint64_t read = 0;
    for (;;) {
      auto rec = early->next();
      REQUIRE(rec.has_value());
      if (!*rec) break;
      ++read;
    }
    CHECK(read + early->lost() == 400);
    CHECK(early->lost() > 0);
  }
  SUBCASE("by age") {
    auto opts = small();
    const auto hour_ago = rill::wall_clock_ns() - 3'600'000'000'000;
    {
      auto log = Log::open(dir.path(), opts);
      REQUIRE(log.has_value());
      append_n(*log, 100, 100, hour_ago);  // old records, several segments
      append_n(*log, 100, 100);            // fresh ones
      REQUIRE(log->close().has_value());
    }
    opts.retention_age = std::chrono::minutes(1);
    auto log = Log::open(dir.path(), opts);  // retention runs at open
    REQUIRE(log.has_value());
    CHECK(log->first_sequence() > 1);
    CHECK(log->first_sequence() <= 101);
    for (const auto& s : log->segments()) CHECK(s.max_ts_ns > hour_ago + 100 * 1000);
  }
}

TEST_CASE("a torn tail is cut and reported; appends continue after it") {
  TempDir dir;
  std::uint64_t good_size = 0;
  fs::path seg;
  {
    auto log = Log::open(dir.path(), small(rill::FsyncPolicy::always()));
    REQUIRE(log.has_value());
    append_n(*log, 10);
    seg = dir / log->segments().back().file;
    good_size = log->segments().back().bytes;
    // No close(): as after kill -9, the checkpoint does not cover these records.
    std::ofstream(seg, std::ios::app | std::ios::binary) << std::string("\x40\0\0\0garbage-partial", 20);
    std::error_code ec;
    fs::copy(dir.path(), dir / "copy", ec);
    REQUIRE_FALSE(ec);
  }
  // The copy is the crash image (the handle's clean close rewrote the original's checkpoint).
  auto log = Log::open(dir / "copy", small(rill::FsyncPolicy::always()));
  REQUIRE_MESSAGE(log.has_value(), log.error().message());
  CHECK(log->recovery().torn_tail);
  CHECK(log->recovery().torn_offset == good_size);
  CHECK(log->recovery().torn_bytes == 20);
  CHECK(fs::file_size(dir / "copy" / seg.filename()) == good_size);
  CHECK(log->next_sequence() == 11);
  append_n(*log, 5);
  CHECK(read_all(*log).size() == 15);
}

TEST_CASE("damage in the middle is an error naming the segment and offset, at open or at read") {
  TempDir dir;
  std::string file;
  std::uint64_t rec_offset = 0;
  {
    auto log = Log::open(dir.path(), small());
    REQUIRE(log.has_value());
    append_n(*log, 200, 100);
    REQUIRE(log->close().has_value());
    file = log->segments()[1].file;
  }
  // The second segment's third record (all records here are 32 + 104 = 136 bytes).
  rec_offset = 48 + 2 * 136;
  flip_byte(dir / file, rec_offset + 40);
  SUBCASE("verify_all at open") {
    auto opts = small();
    opts.verify_all = true;
    auto log = Log::open(dir.path(), opts);
    REQUIRE_FALSE(log.has_value());
    CHECK(log.error().code == Errc::corrupt);
    CHECK(log.error().detail.find(file) != std::string::npos);
    CHECK(log.error().detail.find("offset " + std::to_string(rec_offset)) != std::string::npos);
  }
  SUBCASE("default open trusts the checkpoint; the reader refuses the record") {
    auto log = Log::open(dir.path(), small());
    REQUIRE(log.has_value());
    auto rd = log->reader(1);
    REQUIRE(rd.has_value());
    std::uint64_t served = 0;
    for (;;) {
      auto rec = rd->next();
      if (!rec) {
        CHECK(rec.error().code == Errc::corrupt);
        CHECK(rec.error().detail.find(file) != std::string::npos);
        CHECK(rec.error().detail.find("offset " + std::to_string(rec_offset)) != std::string::npos);
        break;
      }
      REQUIRE(rec->has_value());
      ++served;
    }
    auto probe = log->reader(1);
    REQUIRE(probe.has_value());
    CHECK(served == log->segments()[1].base_seq + 2 - 1);  // everything before the damaged record
  }
}

TEST_CASE("ack store: positions persist, move forward only unless set, and a damaged file is refused") {
  TempDir dir;
  const auto path = dir / "acks";
  {
    auto acks = rill::AckStore::open(path);
    REQUIRE(acks.has_value());
    CHECK_FALSE(acks->get("a").has_value());
    REQUIRE(acks->ack("a", 10).has_value());
    REQUIRE(acks->ack("a", 5).has_value());  // older: ignored
    REQUIRE(acks->ack("b", 3).has_value());
    CHECK(acks->get("a") == 10u);
    REQUIRE(acks->set("b", 1).has_value());
    REQUIRE(acks->ack("gone", 1).has_value());
    REQUIRE(acks->erase("gone").has_value());
    CHECK(acks->ack("", 1).error().code == Errc::invalid_argument);
  }
  {
    auto acks = rill::AckStore::open(path);
    REQUIRE(acks.has_value());
    CHECK(acks->get("a") == 10u);
    CHECK(acks->get("b") == 1u);
    CHECK_FALSE(acks->get("gone").has_value());
    CHECK(acks->all().size() == 2);
  }
  flip_byte(path, 14);
  auto bad = rill::AckStore::open(path);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code == Errc::corrupt);
}

TEST_CASE("dead-letter log keeps message, reason and attempts; re-drive position persists") {
  TempDir dir;
  rill::MessageBuilder mb;
  const std::string payload = "poison";
  const auto env =
      mb.finish_raw(std::as_bytes(std::span(payload.data(), payload.size())),
                    {.topic = "md/x", .publisher_id = 9, .sequence = 77, .timestamp_ns = 5, .headers = {}});
  {
    auto dlq = rill::DeadLetterLog::open(dir / "dead-letters");
    REQUIRE(dlq.has_value());
    for (std::uint32_t i = 1; i <= 3; ++i) {
      auto r = dlq->add(env, "handler threw: bad " + std::to_string(i), i + 2, 9, 76 + i);
      REQUIRE(r.has_value());
      CHECK(*r == i);
    }
    REQUIRE(dlq->mark_redriven(2).has_value());
  }
  auto dlq = rill::DeadLetterLog::open(dir / "dead-letters", true);
  REQUIRE(dlq.has_value());
  CHECK(dlq->redriven() == 2);
  std::vector<rill::DeadLetter> seen;
  std::vector<std::string> reasons;
  REQUIRE(dlq->for_each(0,
                        [&](const rill::DeadLetter& d) {
                          reasons.emplace_back(d.reason);
                          auto v = rill::verify_envelope(d.envelope);
                          REQUIRE(v.has_value());
                          CHECK((*v)->sequence() == 77);
                          seen.push_back(d);
                          return true;
                        })
              .has_value());
  REQUIRE(seen.size() == 3);
  CHECK(reasons[1] == "handler threw: bad 2");
  CHECK(seen[1].attempts == 4);
  CHECK(seen[1].sequence == 78);
  CHECK(seen[1].publisher_id == 9);
  CHECK(seen[2].dlq_seq == 3);
}

TEST_CASE("bad options and read-only misuse are explicit errors") {
  TempDir dir;
  CHECK(Log::open(dir.path(), {.segment_bytes = 10}).error().code == Errc::invalid_argument);
  CHECK(Log::open(dir / "nothing", {.read_only = true}).error().code == Errc::invalid_argument);
  CHECK(rill::parse_fsync_policy("every:0").error().code == Errc::invalid_argument);
  CHECK(rill::parse_fsync_policy("sometimes").error().code == Errc::invalid_argument);
  CHECK(rill::to_string(*rill::parse_fsync_policy("every:25")) == "every:25");
  auto log = Log::open(dir.path(), small());
  REQUIRE(log.has_value());
  std::string big(5000, 'x');
  auto lo = Log::open(dir / "small", {.segment_bytes = 4096, .max_record_bytes = 1000});
  REQUIRE(lo.has_value());
  CHECK(lo->append(bytes_of(big)).error().code == Errc::too_large);
  REQUIRE(log->close().has_value());
  CHECK(log->append(bytes_of("x")).error().code == Errc::closed);
}

TEST_CASE("a segment whose creation was torn (no valid header, nothing after it) is removed at open") {
  TempDir dir;
  {
    auto log = Log::open(dir.path(), small(rill::FsyncPolicy::always()));
    REQUIRE(log.has_value());
    append_n(*log, 3);
  }
  // A crash right after creating the next segment file, before its header reached the disk.
  std::ofstream(dir / "00000000000000000004.log", std::ios::binary) << std::string(20, '\0');
  {
    auto log = Log::open(dir.path(), small(rill::FsyncPolicy::always()));
    REQUIRE_MESSAGE(log.has_value(), log.error().message());
    CHECK(log->recovery().removed_empty_segment);
    CHECK(log->next_sequence() == 4);
    CHECK(read_all(*log).size() == 3);
  }
  // The very first segment torn the same way: the log starts empty instead of refusing to open.
  TempDir fresh;
  std::ofstream(fresh / "00000000000000000001.log", std::ios::binary) << std::string("RILLSEG1", 8);
  auto log = Log::open(fresh.path(), small(rill::FsyncPolicy::always()));
  REQUIRE_MESSAGE(log.has_value(), log.error().message());
  CHECK(log->recovery().removed_empty_segment);
  CHECK(log->next_sequence() == 1);
  append_n(*log, 2);
  CHECK(read_all(*log).size() == 2);
}
