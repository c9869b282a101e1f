// Fuzz target: streaming SQL planning and execution (stream/sql/). The whole input is compiled
// as a script (any tree the parser accepts must plan or get a positioned error, never crash);
// then each line is fed as a JSON payload to a windowed and a plain job. Property: no crash;
// every row has the SELECT list's width; every payload is counted once as input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "rill/sql_job.hpp"

namespace {

constexpr std::string_view table =
    "CREATE TABLE t (k STRING, v BIGINT, d DOUBLE, b BOOLEAN, ts TIMESTAMP(3),"
    " WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('topic' = 'in', 'format' = 'json');\n";

rill::sql::Job make(std::string_view query) {
  auto job = rill::sql::Job::compile(std::string(table) + std::string(query));
  rill::fuzz::expect(job.has_value(), "the fixed queries compile");
  return std::move(*job);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto any = rill::sql::Job::compile(in); !any) {
    rill::fuzz::expect(!any.error().message.empty(), "an error has a message");
    rill::fuzz::expect(any.error().line >= 1, "an error has a line");
  }
  // Fresh jobs per input: state from one input must not leak into the next.
  rill::sql::Job windowed = make(
      "SELECT k, window_start, COUNT(*), SUM(v), MIN(d), MAX(k), AVG(d), COUNT(DISTINCT v) FROM TABLE(HOP(TABLE t, "
      "DESCRIPTOR(ts), INTERVAL '1' SECOND, INTERVAL '3' SECOND)) GROUP BY k, window_start, window_end HAVING SUM(v) > "
      "0");
  rill::sql::Job plain = make(
      "SELECT k || 'x', v * 2 / (v - 1), CASE WHEN b THEN d ELSE -d END, CAST(k AS BIGINT) FROM t "
      "WHERE v % 3 <> 1 OR k LIKE '%a_'");
  windowed.start({.row = [](const rill::sql::OutputRow& r) { rill::fuzz::expect(r.values.size() == 8, "row width"); }});
  plain.start({.row = [](const rill::sql::OutputRow& r) { rill::fuzz::expect(r.values.size() == 4, "row width"); }});
  std::uint64_t seq = 0, lines = 0;
  std::size_t at = 0;
  while (at <= in.size()) {
    const auto nl = std::min(in.find('\n', at), in.size());
    const auto line = in.substr(at, nl - at);
    ++seq;
    ++lines;
    (void)windowed.feed(line, seq % 3, seq);
    (void)plain.feed(line, 1, seq);
    at = nl + 1;
  }
  windowed.finish();
  rill::fuzz::expect(windowed.stats().inputs == lines && plain.stats().inputs == lines, "every payload counted");
  return 0;
}
