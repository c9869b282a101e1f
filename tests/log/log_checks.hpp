// Checks shared by the log unit tests (log_test.cpp, log_direct_test.cpp): small-segment
// options, appending numbered records and reading them all back, checked.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "log_test_util.hpp"
#include "rill/log.hpp"

namespace logtest {

inline rill::LogOptions small(rill::FsyncPolicy p = rill::FsyncPolicy::every(std::chrono::milliseconds(5))) {
  return {.fsync = p, .segment_bytes = 4096, .index_interval_bytes = 256};
}

// Reads every visible record from `from`; checks bodies name their sequence.
inline std::vector<std::uint64_t> read_all(const rill::Log& log, std::uint64_t from = 0,
                                           std::uint64_t* lost = nullptr) {
  std::vector<std::uint64_t> seqs;
  auto r = log.reader(from);
  REQUIRE(r.has_value());
  for (;;) {
    auto rec = r->next();
    REQUIRE_MESSAGE(rec.has_value(), rec.error().message());
    if (!*rec) break;
    CHECK(text_of((*rec)->body).starts_with("record " + std::to_string((*rec)->sequence)));
    CHECK(reinterpret_cast<std::uintptr_t>((*rec)->body.data()) % 8 == 0);
    seqs.push_back((*rec)->sequence);
  }
  if (lost != nullptr) *lost = r->lost();
  return seqs;
}

inline void append_n(rill::Log& log, std::uint64_t n, std::size_t size = 0, std::int64_t ts0 = 0) {
  for (std::uint64_t i = 0; i < n; ++i) {
    const auto seq = log.next_sequence();
    auto r = log.append(bytes_of(body_for(seq, size)),
                        {.timestamp_ns = ts0 != 0 ? ts0 + static_cast<std::int64_t>(seq) * 1000 : 0});
    REQUIRE_MESSAGE(r.has_value(), r.error().message());
    REQUIRE(*r == seq);
  }
}

}  // namespace logtest
