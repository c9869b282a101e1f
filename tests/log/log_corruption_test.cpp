// Seeded damage to a log's files: random bit flips and truncations of segment files and
// index files (1,200 cases). Every case is either recovered (damage after the last
// checkpoint at the end of the last segment: cut and reported) or refused with an error
// naming the segment and the exact offset; no record that differs from what was written
// is ever served, and nothing crashes.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "log_test_util.hpp"
#include "policies/log/format.hpp"
#include "rill/log.hpp"
#include "../test_seed.hpp"

namespace fs = std::filesystem;
namespace logfmt = rill::detail::logfmt;
using namespace logtest;

namespace {

const rill::LogOptions opts{.fsync = rill::FsyncPolicy::always(), .segment_bytes = 4096, .index_interval_bytes = 512};

struct Rec {
  std::uint64_t seq;
  std::size_t offset;
  std::size_t size;
};
struct Seg {
  std::string name;
  std::size_t size = 0;
  std::size_t checkpoint = 0;  // index end_offset; 0 without an index
  std::vector<Rec> recs;
};

std::vector<std::byte> slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), {});
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

// A pristine crash image: sealed segments with checkpoints, then a last segment whose
// records are partly covered by its checkpoint (a clean close) and partly not (appended
// after reopening, no close: the directory is copied while the log is open).
std::map<std::uint64_t, std::string> make_image(const fs::path& work, const fs::path& image) {
  std::map<std::uint64_t, std::string> bodies;
  // The image is the fixture, not the randomised part: a fixed seed keeps its shape (the last
  // segment must have an unchecked tail); the damage below is drawn from test_seed().
  std::mt19937_64 rng(99);
  auto add = [&](rill::Log& log, int n) {
    for (int i = 0; i < n; ++i) {
      const auto seq = log.next_sequence();
      const auto body = body_for(seq, std::uniform_int_distribution<std::size_t>(10, 300)(rng));
      REQUIRE(log.append(bytes_of(body)).has_value());
      bodies[seq] = body;
    }
  };
  {
    auto log = rill::Log::open(work, opts);
    REQUIRE(log.has_value());
    add(*log, 60);
    REQUIRE(log->close().has_value());
  }
  auto log = rill::Log::open(work, opts);
  REQUIRE(log.has_value());
  // Fill the current last segment a bit more without rolling, so it has an uncheckpointed tail.
  const auto room = 4096 - log->segments().back().bytes;
  for (std::size_t used = 0; used + 32 + 48 < room;) {
    const auto seq = log->next_sequence();
    const auto body = body_for(seq, 16);
    REQUIRE(log->append(bytes_of(body)).has_value());
    bodies[seq] = body;
    used += logfmt::record_size(body.size());
  }
  fs::copy(work, image);
  fs::remove(image / "lock");
  return bodies;
}

std::vector<Seg> layout(const fs::path& image) {
  std::vector<Seg> segs;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(image)) {
    if (e.path().extension() == ".log") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    Seg s;
    s.name = f.filename().string();
    const auto data = slurp(f);
    s.size = data.size();
    auto idx_path = f;
    idx_path.replace_extension(".idx");
    if (fs::exists(idx_path)) {
      auto idx = logfmt::decode_index(slurp(idx_path));
      REQUIRE(idx.has_value());
      s.checkpoint = idx->end_offset;
    }
    logfmt::RecordView r;
    for (std::size_t off = logfmt::segment_header_bytes; off < data.size(); off += r.size) {
      REQUIRE(logfmt::check_record(data, off, 1u << 20, r) == logfmt::RecordCheck::ok);
      s.recs.push_back({r.sequence, off, r.size});
    }
    segs.push_back(std::move(s));
  }
  return segs;
}

void flip_bit(const fs::path& f, std::size_t at, int bit) {
  std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
  io.seekg(static_cast<std::streamoff>(at));
  char c = 0;
  io.read(&c, 1);
  c = static_cast<char>(c ^ (1 << bit));
  io.seekp(static_cast<std::streamoff>(at));
  io.write(&c, 1);
}

// What must happen for one case.
struct Expect {
  bool error = false;
  std::string file;
  std::size_t offset = 0;
  bool torn = false;
  std::size_t torn_offset = 0;
  std::uint64_t last_seq = 0;  // when recovered: the records that must remain
};

// Reads everything; each record must equal what was written. Returns the last sequence, or
// the error the reader stopped with.
rill::Result<std::uint64_t> read_back(const rill::Log& log, const std::map<std::uint64_t, std::string>& bodies) {
  auto rd = log.reader(1);
  if (!rd) return std::unexpected(rd.error());
  std::uint64_t last = 0;
  for (;;) {
    auto rec = rd->next();
    if (!rec) return std::unexpected(rec.error());
    if (!*rec) return last;
    const auto it = bodies.find((*rec)->sequence);
    REQUIRE(it != bodies.end());
    REQUIRE_MESSAGE(text_of((*rec)->body) == it->second, "served a record that differs from what was written");
    last = (*rec)->sequence;
  }
}

}  // namespace

TEST_CASE("1,200 seeded truncations and bit flips: tail damage cut, middle damage named, nothing bad served") {
  // 2,400 opens of damaged copies: on tmpfs their fsyncs cost nothing (the logic is the point).
  TempDir dir("/dev/shm");
  const auto bodies = make_image(dir / "work", dir / "image");
  const auto segs = layout(dir / "image");
  REQUIRE(segs.size() >= 3);
  REQUIRE(segs.back().checkpoint > logfmt::segment_header_bytes);
  REQUIRE(segs.back().checkpoint < segs.back().size);  // the last segment has an unchecked tail
  const std::uint64_t total = bodies.rbegin()->first;

  std::mt19937_64 rng(rilltest::test_seed());
  std::map<std::string, int> outcomes;
  for (int n = 0; n < 1200; ++n) {
    // The last segment (where tails are cut) gets 40% of the cases, the others share the rest.
    const std::size_t k = std::uniform_int_distribution<int>(0, 9)(rng) < 4
                              ? segs.size() - 1
                              : std::uniform_int_distribution<std::size_t>(0, segs.size() - 2)(rng);
    const Seg& s = segs[k];
    const bool last = k + 1 == segs.size();
    const int kind = std::uniform_int_distribution<int>(0, 9)(rng);  // 0-5 flip, 6-8 truncate, 9 index flip
    // In the last segment, half the damage lands past the checkpoint (the crash-tail region).
    const bool in_tail = last && std::uniform_int_distribution<int>(0, 1)(rng) == 1;
    const std::size_t p = std::uniform_int_distribution<std::size_t>(in_tail ? s.checkpoint : 0, s.size - 1)(rng);
    const int bit = std::uniform_int_distribution<int>(0, 7)(rng);
    const std::size_t idx_pick = std::uniform_int_distribution<std::size_t>(0, 1u << 20)(rng);
    fs::path idx_file = dir / "image" / s.name;
    idx_file.replace_extension(".idx");
    if (kind == 9 && !fs::exists(idx_file)) continue;

    Expect ex;
    ex.file = s.name;
    std::string what;
    // The record containing p (none when p is in the header).
    const Rec* hit = nullptr;
    for (const auto& r : s.recs) {
      if (p >= r.offset && p < r.offset + r.size) hit = &r;
    }
    const std::uint64_t before_hit = hit != nullptr ? hit->seq - 1 : 0;
    if (kind <= 5) {
      what = "flip bit " + std::to_string(bit) + " of " + s.name + " @" + std::to_string(p);
      if (hit == nullptr) {
        ex.error = true;
        ex.offset = 0;
      } else if (!last || p < s.checkpoint || hit != &s.recs.back()) {
        ex.error = true;
        ex.offset = hit->offset;
      } else {
        ex.torn = true;
        ex.torn_offset = hit->offset;
        ex.last_seq = before_hit;
      }
    } else if (kind <= 8) {
      what = "truncate " + s.name + " to " + std::to_string(p);
      if (!last || p < logfmt::segment_header_bytes || p < s.checkpoint) {
        ex.error = true;
        ex.offset = p < logfmt::segment_header_bytes ? 0 : p;
      } else if (hit != nullptr && p != hit->offset) {
        ex.torn = true;
        ex.torn_offset = hit->offset;
        ex.last_seq = before_hit;
      } else {
        ex.last_seq = hit != nullptr ? before_hit : total;
      }
    } else {
      what = "flip a bit of " + idx_file.filename().string();
      ex.last_seq = total;  // an index is rebuilt from its segment: nothing is lost
    }
    INFO("case " << n << ": " << what);
    auto damaged_copy = [&](const fs::path& caze) {
      fs::remove_all(caze);
      fs::copy(dir / "image", caze);
      if (kind <= 5) {
        flip_bit(caze / s.name, p, bit);
      } else if (kind <= 8) {
        fs::resize_file(caze / s.name, p);
      } else {
        flip_bit(caze / idx_file.filename(), idx_pick % fs::file_size(idx_file), bit);
      }
    };
    auto names_damage = [&](const rill::Error& e) {
      CHECK(e.code == rill::Errc::corrupt);
      CHECK_MESSAGE(
          e.detail.find("segment " + ex.file + " at offset " + std::to_string(ex.offset) + ":") != std::string::npos,
          e.detail);
    };
    const fs::path caze = dir / "case";

    // 1. verify_all: the verdict is reached at open.
    {
      damaged_copy(caze);
      auto o = opts;
      o.verify_all = true;
      auto log = rill::Log::open(caze, o);
      if (ex.error) {
        REQUIRE_FALSE(log.has_value());
        names_damage(log.error());
        ++outcomes["error"];
      } else {
        REQUIRE_MESSAGE(log.has_value(), log.error().message());
        CHECK(log->recovery().torn_tail == ex.torn);
        if (ex.torn) {
          CHECK(log->recovery().torn_segment == ex.file);
          CHECK(log->recovery().torn_offset == ex.torn_offset);
        }
        auto got = read_back(*log, bodies);
        REQUIRE_MESSAGE(got.has_value(), got.error().message());
        CHECK(*got == ex.last_seq);
        CHECK(log->next_sequence() == ex.last_seq + 1);
        ++outcomes[ex.torn ? "cut" : "recovered"];
      }
    }
    // 2. The default open (checkpoints trusted, so sealed segments are not re-read): the same
    //    verdict, at open or when the damaged record is reached; never a wrong record.
    {
      damaged_copy(caze);
      auto log = rill::Log::open(caze, opts);
      if (ex.error) {
        if (log.has_value()) {
          auto got = read_back(*log, bodies);
          REQUIRE_FALSE(got.has_value());
          names_damage(got.error());
          ++outcomes["error at read"];
        } else {
          names_damage(log.error());
        }
      } else {
        REQUIRE_MESSAGE(log.has_value(), log.error().message());
        CHECK(log->recovery().torn_tail == ex.torn);
        auto got = read_back(*log, bodies);
        REQUIRE_MESSAGE(got.has_value(), got.error().message());
        CHECK(*got == ex.last_seq);
      }
    }
  }
  MESSAGE("outcomes: error " << outcomes["error"] << " (of which found only when read with checkpoints trusted: "
                             << outcomes["error at read"] << "), cut " << outcomes["cut"] << ", recovered "
                             << outcomes["recovered"]);
  CHECK(outcomes["error"] > 300);
  CHECK(outcomes["cut"] > 50);
  CHECK(outcomes["recovered"] > 50);
}
