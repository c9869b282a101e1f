// Streaming SQL execution (rill::sql::Job) against plain references written here: loops and
// maps over the same generated events, no operator code shared with the engine. Filters and
// projections, each window kind, HAVING, late events, markers, and semantic errors with
// their line:column.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "rill/sql_job.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace {

using rill::sql::Job;
using rill::sql::OutputRow;
using rill::sql::Type;
using rill::sql::Value;

struct Ev {
  std::string k;
  long long v = 0;
  long long ts = 0;
};

// Keys a..e, values -50..50, times rising 0..199 ms a step with up to `jitter` ms of disorder.
std::vector<Ev> events(std::size_t n, unsigned seed, long long jitter) {
  std::mt19937 rng(seed);
  std::vector<Ev> out;
  long long t = 1'000'000;
  for (std::size_t i = 0; i < n; ++i) {
    t += static_cast<long long>(rng() % 200);
    const long long back = jitter > 0 ? static_cast<long long>(rng() % static_cast<unsigned>(jitter)) : 0;
    out.push_back(Ev{.k = std::string(1, static_cast<char>('a' + rng() % 5)),
                     .v = static_cast<long long>(rng() % 101) - 50,
                     .ts = t - back});
  }
  return out;
}

std::string json(const Ev& e) {
  return "{\"k\":\"" + e.k + "\",\"v\":" + std::to_string(e.v) + ",\"ts\":" + std::to_string(e.ts) + "}";
}

std::string fmt_double(double d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", d);
  return buf;
}

// A row as text in the test's own format.
std::string text(const std::vector<Value>& values) {
  std::string s;
  for (const auto& v : values) {
    if (!s.empty()) s += "|";
    switch (v.type) {
      case Type::null:
        s += "null";
        break;
      case Type::boolean:
        s += v.i != 0 ? "true" : "false";
        break;
      case Type::bigint:
        s += std::to_string(v.i);
        break;
      case Type::double_:
        s += fmt_double(v.d);
        break;
      case Type::string:
        s += v.s;
        break;
      case Type::timestamp:
        s += 'T';
        s += std::to_string(v.i);
        break;
      default:
        s += "?";
        break;
    }
  }
  return s;
}

struct Run {
  std::vector<std::string> rows;  // "+I " + text
  std::vector<long long> markers;
  rill::sql::JobStats stats;
  bool markers_ok = true;  // every row's window_end (column `end_col`) <= the next marker
};

Run run(const std::string& sql, const std::vector<Ev>& in, int end_col = -1) {
  auto job = Job::compile(sql);
  REQUIRE_MESSAGE(job.has_value(), (job ? "" : job.error().to_string()));
  Run r;
  std::vector<long long> pending_ends;
  job->start({.row =
                  [&](const OutputRow& row) {
                    r.rows.push_back(std::string(rill::stream::to_string(row.kind)) + " " + text(row.values));
                    if (end_col >= 0) pending_ends.push_back(row.values[static_cast<std::size_t>(end_col)].i);
                  },
              .watermark =
                  [&](long long w) {
                    for (const long long end : pending_ends) r.markers_ok = r.markers_ok && end <= w;
                    pending_ends.clear();
                    r.markers.push_back(w);
                  }});
  std::uint64_t seq = 0;
  for (const auto& e : in) job->feed(json(e), 7, ++seq);
  job->finish();
  r.stats = job->stats();
  return r;
}

const std::string table =
    "CREATE TABLE t (k STRING, v INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '500' MILLISECOND)\n"
    "  WITH ('topic' = 'in', 'format' = 'json');\n";

// The aggregates of one group, computed plainly.
struct Agg {
  long long n = 0, sum = 0, min = 0, max = 0;
  std::set<long long> distinct;
  void add(long long v) {
    min = n == 0 ? v : std::min(min, v);
    max = n == 0 ? v : std::max(max, v);
    ++n;
    sum += v;
    distinct.insert(v);
  }
  [[nodiscard]] std::string row(const std::string& k, long long start, long long end) const {
    return "+I " + k + "|T" + std::to_string(start) + "|T" + std::to_string(end) + "|" + std::to_string(n) + "|" +
           std::to_string(sum) + "|" + std::to_string(min) + "|" + std::to_string(max) + "|" +
           fmt_double(static_cast<double>(sum) / static_cast<double>(n)) + "|" + std::to_string(distinct.size());
  }
};

const std::string agg_list = "k, window_start, window_end, COUNT(*), SUM(v), MIN(v), MAX(v), AVG(v), COUNT(DISTINCT v)";

std::multiset<std::string> sorted(const std::vector<std::string>& rows) {
  return {rows.begin(), rows.end()};
}

long long floor_to(long long t, long long step) {
  return t / step * step - (t % step < 0 ? step : 0);
}

}  // namespace

TEST_CASE("filter and projection equal a plain loop") {
  const auto in = events(5000, 1, 0);
  const auto r = run(table +
                         "SELECT k, v * 2 + 1 AS w, CASE WHEN v > 0 THEN 'pos' WHEN v = 0 THEN 'zero' ELSE 'neg' END, "
                         "v / 7, CAST(v AS DOUBLE) / 4, UPPER(k) || '!' FROM t WHERE MOD(v, 3) = 0 AND k <> 'b' "
                         "AND NOT v BETWEEN -10 AND -5 AND k IN ('a', 'c', 'd', 'e')",
                     in);
  std::vector<std::string> want;
  for (const auto& e : in) {
    if (e.v % 3 != 0 || e.k == "b" || (e.v >= -10 && e.v <= -5)) continue;
    std::string up = e.k;
    up[0] = static_cast<char>(up[0] - 'a' + 'A');
    want.push_back("+I " + e.k + "|" + std::to_string(e.v * 2 + 1) + "|" +
                   (e.v > 0    ? "pos"
                    : e.v == 0 ? "zero"
                               : "neg") +
                   "|" + std::to_string(e.v / 7) + "|" + fmt_double(static_cast<double>(e.v) / 4) + "|" + up + "!");
  }
  CHECK(want.size() > 500);
  CHECK(r.rows == want);
  CHECK(r.stats.filtered == in.size() - want.size());
  CHECK(r.markers.empty());
}

TEST_CASE("TUMBLE with every aggregate equals a plain grouping") {
  const auto in = events(20000, 2, 300);  // disorder 300 ms < the 500 ms watermark delay: nothing late
  const auto r =
      run(table + "SELECT " + agg_list +
              " FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '2' SECOND)) GROUP BY k, window_start, window_end",
          in, 2);
  std::map<std::pair<std::string, long long>, Agg> ref;
  for (const auto& e : in) ref[{e.k, floor_to(e.ts, 2000)}].add(e.v);
  std::vector<std::string> want;
  for (const auto& [key, a] : ref) want.push_back(a.row(key.first, key.second, key.second + 2000));
  CHECK(r.stats.late_dropped == 0);
  CHECK(sorted(r.rows) == sorted(want));
  CHECK(r.markers_ok);
  CHECK(std::is_sorted(r.markers.begin(), r.markers.end()));
  CHECK(r.markers.size() > 100);
}

TEST_CASE("HOP windows equal a plain grouping over every window an event falls in") {
  const auto in = events(10000, 3, 300);
  const auto r = run(table + "SELECT " + agg_list +
                         " FROM TABLE(HOP(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND, INTERVAL '3' SECOND))"
                         " GROUP BY window_start, k, window_end",
                     in, 2);
  std::map<std::pair<std::string, long long>, Agg> ref;
  for (const auto& e : in) {
    for (long long s = floor_to(e.ts, 1000) - 2000; s <= e.ts; s += 1000) {
      if (e.ts < s + 3000) ref[{e.k, s}].add(e.v);
    }
  }
  std::vector<std::string> want;
  for (const auto& [key, a] : ref) want.push_back(a.row(key.first, key.second, key.second + 3000));
  CHECK(sorted(r.rows) == sorted(want));
  CHECK(r.markers_ok);
}

TEST_CASE("CUMULATE windows equal a plain grouping over each period's growing prefixes") {
  const auto in = events(10000, 8, 300);
  const auto r =
      run(table + "SELECT " + agg_list +
              " FROM TABLE(CUMULATE(TABLE t, DESCRIPTOR(ts), INTERVAL '500' MILLISECOND, INTERVAL '2' SECOND))"
              " GROUP BY k, window_start, window_end",
          in, 2);
  std::map<std::tuple<std::string, long long, long long>, Agg> ref;
  for (const auto& e : in) {
    const long long period = floor_to(e.ts, 2000);
    for (long long end = period + 500; end <= period + 2000; end += 500) {
      if (e.ts < end) ref[{e.k, period, end}].add(e.v);
    }
  }
  std::vector<std::string> want;
  for (const auto& [key, a] : ref) want.push_back(a.row(std::get<0>(key), std::get<1>(key), std::get<2>(key)));
  CHECK(r.stats.late_dropped == 0);
  CHECK(sorted(r.rows) == sorted(want));
  CHECK(r.markers_ok);
}

TEST_CASE("SESSION windows equal each key's runs of events closer than the gap") {
  auto in = events(8000, 4, 300);
  // Pauses now and then so sessions end: every 50th event jumps 2 s ahead (with the rest).
  long long shift = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (i % 50 == 0) shift += 2000;
    in[i].ts += shift;
  }
  const long long gap = 750;  // times are whole ms; sessions by strict gap < 750 vs >= 750
  const auto r = run(table + "SELECT " + agg_list +
                         " FROM TABLE(SESSION(TABLE t, DESCRIPTOR(ts), INTERVAL '750' MILLISECOND))"
                         " GROUP BY k, window_start, window_end",
                     in, 2);
  std::map<std::string, std::vector<Ev>> by_key;
  for (const auto& e : in) by_key[e.k].push_back(e);
  std::vector<std::string> want;
  for (auto& [k, evs] : by_key) {
    std::stable_sort(evs.begin(), evs.end(), [](const Ev& a, const Ev& b) { return a.ts < b.ts; });
    Agg a;
    long long start = evs[0].ts, last = evs[0].ts;
    for (const auto& e : evs) {
      if (a.n > 0 && e.ts - last >= gap) {
        want.push_back(a.row(k, start, last + gap));
        a = Agg{};
        start = e.ts;
      }
      a.add(e.v);
      last = std::max(last, e.ts);
    }
    want.push_back(a.row(k, start, last + gap));
  }
  CHECK(r.stats.late_dropped == 0);
  CHECK(want.size() > 100);
  // Out-of-order arrivals may first open separate sessions that a later event bridges; with
  // final-only emission none was emitted before it merged, so only +I rows come out.
  CHECK(sorted(r.rows) == sorted(want));
}

TEST_CASE("HAVING keeps the groups whose aggregates qualify") {
  const auto in = events(10000, 5, 300);
  const auto r =
      run(table +
              "SELECT k, window_start, SUM(v) AS s FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), "
              "INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end HAVING COUNT(*) >= 2 AND SUM(v) > 10",
          in);
  std::map<std::pair<std::string, long long>, Agg> ref;
  for (const auto& e : in) ref[{e.k, floor_to(e.ts, 1000)}].add(e.v);
  std::vector<std::string> want;
  for (const auto& [key, a] : ref) {
    if (a.n >= 2 && a.sum > 10)
      want.push_back("+I " + key.first + "|T" + std::to_string(key.second) + "|" + std::to_string(a.sum));
  }
  CHECK(want.size() > 50);
  CHECK(want.size() < ref.size());
  CHECK(sorted(r.rows) == sorted(want));
}

TEST_CASE("events behind the watermark are dropped and counted, the rest aggregated") {
  // Disorder up to 1500 ms against a 500 ms delay: some events arrive late.
  const auto in = events(10000, 6, 1500);
  const auto r =
      run(table + "SELECT " + agg_list +
              " FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end",
          in, 2);
  std::map<std::pair<std::string, long long>, Agg> ref;
  long long max_seen = std::numeric_limits<long long>::min();
  std::uint64_t late = 0;
  for (const auto& e : in) {
    // The watermark before this event: the latest time so far minus the delay.
    const bool is_late = max_seen != std::numeric_limits<long long>::min() && e.ts < max_seen - 500;
    max_seen = std::max(max_seen, e.ts);
    if (is_late) {
      ++late;
      continue;
    }
    ref[{e.k, floor_to(e.ts, 1000)}].add(e.v);
  }
  std::vector<std::string> want;
  for (const auto& [key, a] : ref) want.push_back(a.row(key.first, key.second, key.second + 1000));
  CHECK(late > 100);
  CHECK(r.stats.late_dropped == late);
  CHECK(sorted(r.rows) == sorted(want));
  CHECK(r.markers_ok);
}

TEST_CASE("semantic errors name the line and column of the offending text") {
  const auto where = [](const std::string& script, const std::string& token) {
    const auto at = script.find(token);
    const auto line_start = script.rfind('\n', at);
    const std::size_t line =
        static_cast<std::size_t>(std::count(script.begin(), script.begin() + static_cast<long>(at), '\n')) + 1;
    const std::size_t column = line_start == std::string::npos ? at + 1 : at - line_start;
    return std::to_string(line) + ":" + std::to_string(column) + ": ";
  };
  const auto error = [](const std::string& script) {
    auto job = Job::compile(script);
    return job ? std::string("compiled") : job.error().to_string();
  };
  struct Case {
    std::string script, token, message;
  };
  const std::vector<Case> cases{
      {table + "SELECT k, nope FROM t", "nope", "unknown column 'nope'"},
      {table + "SELECT k FROM missing", "missing", "unknown table 'missing'"},
      {table + "SELECT k FROM t WHERE k > 3", "k > 3", "'>' cannot compare these types, got STRING and BIGINT"},
      {table + "SELECT k FROM t WHERE v + 1", "v + 1", "WHERE needs a BOOLEAN condition, got BIGINT"},
      {table + "SELECT k || v FROM t", "k || v", "'||' needs STRING operands, got STRING and BIGINT"},
      {table + "SELECT v, COUNT(*) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, "
               "window_start, window_end",
       "v, COUNT", "column 'v' in the SELECT list must be in GROUP BY or inside an aggregate"},
      {table + "SELECT COUNT(*) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(v), INTERVAL '1' SECOND)) GROUP BY window_start, "
               "window_end",
       "DESCRIPTOR(v)", "DESCRIPTOR must name 'ts', the table's WATERMARK column"},
      {table + "SELECT COUNT(*) FROM t", "COUNT",
       "aggregate COUNT needs GROUP BY window_start, window_end over a window function"},
      {table + "SELECT SUM(k) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, "
               "window_end",
       "SUM", "SUM needs a number, got STRING"},
      {table + "SELECT * FROM t JOIN t AS u ON t.k = u.k", "JOIN", "joins are not supported yet"},
      {table + "SELECT k FROM t\nWHERE v = 'x'", "v = 'x'", "'=' cannot compare these types, got BIGINT and STRING"},
      {"CREATE TABLE u (a INT, WATERMARK FOR b AS b) WITH ('topic' = 'x');\nSELECT a FROM u", "WATERMARK",
       "unknown column 'b' in WATERMARK FOR"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.script);
    CHECK(error(c.script) == where(c.script, c.token) + c.message);
  }
  CHECK(error("SELECT FROM").find("1:8: expected") == 0);  // syntax errors keep their position
}

TEST_CASE("INSERT checks the SELECT list against the sink's columns") {
  const std::string sink =
      "CREATE TABLE out (k STRING, x DOUBLE) WITH ('topic' = 'o', 'endpoint' = 'tcp://127.0.0.1:1');\n";
  auto ok = Job::compile(table + sink + "INSERT INTO out SELECT k, v FROM t");
  REQUIRE(ok.has_value());
  CHECK(ok->columns()[1].name == "x");
  CHECK(ok->columns()[1].type == Type::double_);
  auto bad = Job::compile(table + sink + "INSERT INTO out SELECT v, k FROM t");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message == "column 1 is BIGINT, sink column 'k' is STRING");
  auto few = Job::compile(table + sink + "INSERT INTO out SELECT k FROM t");
  REQUIRE_FALSE(few.has_value());
  CHECK(few.error().message == "INSERT INTO out gives 1 columns, the table has 2");
}

TEST_CASE("bad input rows are counted and skipped") {
  auto job = Job::compile(table + "SELECT k, v FROM t");
  REQUIRE(job.has_value());
  std::vector<std::string> rows;
  job->start({.row = [&](const OutputRow& r) { rows.push_back(text(r.values)); }});
  CHECK(job->feed(R"({"k":"a","v":1,"ts":5})", 1, 1));
  CHECK_FALSE(job->feed(R"({"k":"a","v":"one","ts":5})", 1, 2));  // wrong JSON type
  CHECK_FALSE(job->feed(R"({"k":"a","v":1})", 1, 3));             // no event time
  CHECK_FALSE(job->feed("not json", 1, 4));
  CHECK_FALSE(job->feed(R"({"k":"a","v":9223372036854775808,"ts":5})", 1, 6));  // past int64 (a double)
  CHECK_FALSE(job->feed(R"({"k":"a","v":1.5,"ts":5})", 1, 7));                  // not whole
  CHECK(job->feed(R"({"v":2,"ts":"1970-01-01T00:00:01.5Z"})", 1, 5));  // missing k: NULL
  CHECK(rows == std::vector<std::string>{"a|1", "null|2"});
  CHECK(job->stats().bad_input == 5);
}

TEST_CASE("a checkpoint restored into a fresh job continues where the first one stopped") {
  const auto in = events(6000, 7, 300);
  const std::string sql = table + "SELECT " + agg_list +
                          " FROM TABLE(SESSION(TABLE t, DESCRIPTOR(ts), INTERVAL '300' MILLISECOND))"
                          " GROUP BY k, window_start, window_end";
  const auto whole = run(sql, in);
  const std::string path = "sql_job_test.ckpt";
  std::vector<std::string> rows;
  const auto collect = [&](const OutputRow& r) {
    rows.push_back(std::string(rill::stream::to_string(r.kind)) + " " + text(r.values));
  };
  {
    auto first = Job::compile(sql);
    REQUIRE(first.has_value());
    first->start({.row = collect});
    for (std::size_t i = 0; i < 3000; ++i) first->feed(json(in[i]), 7, i + 1);
    REQUIRE(first->checkpoint(path, {.inputs = {{7, 3000}}, .outputs = rows.size()}).has_value());
  }
  auto second = Job::compile(sql);
  REQUIRE(second.has_value());
  second->start({.row = collect});
  auto at = second->restore(path);
  REQUIRE_MESSAGE(at.has_value(), (at ? "" : at.error()));
  CHECK(at->inputs.at(7) == 3000);
  CHECK(at->outputs == rows.size());
  for (std::size_t i = 3000; i < in.size(); ++i) second->feed(json(in[i]), 7, i + 1);
  second->finish();
  CHECK(sorted(rows) == sorted(whole.rows));
  // Another query's checkpoint does not load.
  auto other = Job::compile(table + "SELECT k FROM t");
  REQUIRE(other.has_value());
  other->start({});
  CHECK_FALSE(other->restore(path).has_value());
  std::remove(path.c_str());
}
