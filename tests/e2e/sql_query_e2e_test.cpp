// End-to-end: `rill query` as a process, fed by a publisher in this test over tcp. A windowed
// SELECT prints exactly the rows of a plain reference computed here (and watermark lines);
// INSERT INTO publishes them to a sink that `rill sub` reads; a bad script exits 2 with
// line:column.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <ctime>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"
#include "rill/rill.hpp"

namespace rill::e2e {

namespace {

struct Ev {
  std::string k;
  long long v = 0;
  long long ts = 0;
};

std::vector<Ev> make_events(int n) {
  std::mt19937 rng(11);
  std::vector<Ev> out;
  long long t = 1'700'000'000'000;
  for (int i = 0; i < n; ++i) {
    t += static_cast<long long>(rng() % 50);
    out.push_back(Ev{.k = std::string(1, static_cast<char>('a' + rng() % 3)),
                     .v = static_cast<long long>(rng() % 100),
                     .ts = t - static_cast<long long>(rng() % 100)});
  }
  return out;
}

// ISO-8601 UTC with milliseconds, written here with gmtime_r (not the library's formatter).
std::string iso(long long ms) {
  const std::time_t s = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&s, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
  return buf;
}

// Per (key, 1 s window): count and sum, as the query's row object.
std::multiset<std::string> reference_rows(const std::vector<Ev>& evs) {
  std::map<std::pair<std::string, long long>, std::pair<long long, long long>> agg;
  for (const auto& e : evs) {
    auto& a = agg[{e.k, e.ts / 1000 * 1000}];
    ++a.first;
    a.second += e.v;
  }
  std::multiset<std::string> rows;
  for (const auto& [key, a] : agg) {
    rows.insert("{\"k\":\"" + key.first + "\",\"window_start\":\"" + iso(key.second) +
                "\",\"n\":" + std::to_string(a.first) + ",\"total\":" + std::to_string(a.second) + "}");
  }
  return rows;
}

const std::string table =
    "CREATE TABLE t (k STRING, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '200' MILLISECOND)"
    " WITH ('topic' = 'in/events', 'format' = 'json');\n";
const std::string query =
    "SELECT k, window_start, COUNT(*) AS n, SUM(v) AS total FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), "
    "INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end";

void publish_all(const std::string& ep, const std::vector<Ev>& evs) {
  Node node;
  auto pub = node.publisher({.endpoint = ep, .topic = "in/events"});
  REQUIRE(pub.has_value());
  REQUIRE(pub->wait_for_subscribers(1, std::chrono::seconds(20)).has_value());
  for (const auto& e : evs) {
    const std::string json =
        "{\"k\":\"" + e.k + "\",\"v\":" + std::to_string(e.v) + ",\"ts\":" + std::to_string(e.ts) + "}";
    REQUIRE(pub->publish_text(json).has_value());
  }
  pub->flush();
}

// On a mismatch, the first rows on each side only.
std::string diff(const std::multiset<std::string>& got, const std::multiset<std::string>& want) {
  std::string out;
  int n = 0;
  for (const auto& g : got) {
    if (!want.contains(g) && n++ < 3) out += "only got:  " + g + "\n";
  }
  n = 0;
  for (const auto& w : want) {
    if (!got.contains(w) && n++ < 3) out += "only want: " + w + "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("rill query prints a windowed SELECT's rows equal to a plain reference, with watermark lines") {
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  const auto evs = make_events(3000);
  auto q = spawn_rill(dir, "query", {"query", ep, "--sql", table + query, "--idle-exit-ms", "1500"});
  publish_all(ep, evs);
  REQUIRE(q->wait(60s).describe() == "exit 0");
  std::multiset<std::string> got;
  int markers = 0;
  const std::string out = q->out();
  for (const auto line : lines(out)) {
    if (line.starts_with("{\"watermark\":\"")) {
      ++markers;
      continue;
    }
    const std::string_view head = "{\"op\":\"+I\",\"row\":";
    REQUIRE(line.starts_with(head));
    got.insert(std::string(line.substr(head.size(), line.size() - head.size() - 1)));
  }
  // Late events (behind the 200 ms delay) are dropped: the reference drops them the same way.
  std::vector<Ev> kept;
  long long max_seen = std::numeric_limits<long long>::min();
  for (const auto& e : evs) {
    const bool late = max_seen != std::numeric_limits<long long>::min() && e.ts < max_seen - 200;
    max_seen = std::max(max_seen, e.ts);
    if (!late) kept.push_back(e);
  }
  const auto stats = parse_stats(q->err());
  REQUIRE(stats.found);
  CHECK(stats["inputs"] == evs.size());
  CHECK(stats["late_dropped"] == evs.size() - kept.size());
  CHECK_MESSAGE(got == reference_rows(kept), diff(got, reference_rows(kept)));
  CHECK(markers > 50);
}

TEST_CASE("rill query INSERT INTO publishes the rows on the sink's topic, with op headers and markers") {
  TempDir dir;
  const auto in_ep = tcp_endpoint(free_port());
  const auto out_ep = tcp_endpoint(free_port());
  const auto evs = make_events(2000);
  const std::string sink =
      "CREATE TABLE sums (k STRING, window_start TIMESTAMP(3), n BIGINT, total BIGINT)"
      " WITH ('topic' = 'out/sums', 'endpoint' = '" +
      out_ep + "');\n";
  auto q = spawn_rill(dir, "query",
                      {"query", in_ep, "--sql", table + sink + "INSERT INTO sums " + query, "--idle-exit-ms", "3000",
                       "--wait-subs", "1"});
  auto sub = spawn_rill(dir, "sub", {"sub", out_ep, "out/", "--format", "text", "--idle-exit-ms", "6000"});
  publish_all(in_ep, evs);
  REQUIRE(q->wait(60s).describe() == "exit 0");
  REQUIRE(sub->wait(60s).describe() == "exit 0");
  std::vector<Ev> kept;
  long long max_seen = std::numeric_limits<long long>::min();
  for (const auto& e : evs) {
    const bool late = max_seen != std::numeric_limits<long long>::min() && e.ts < max_seen - 200;
    max_seen = std::max(max_seen, e.ts);
    if (!late) kept.push_back(e);
  }
  std::multiset<std::string> got;
  int markers = 0;
  const std::string out = sub->out();
  for (const auto line : lines(out)) {
    // text format: TOPIC SEQ PAYLOAD
    if (line.empty() || line.starts_with("{\"stats\"")) continue;
    const auto sp2 = line.find(' ', line.find(' ') + 1);
    const auto payload = line.substr(sp2 + 1);
    if (payload.starts_with("{\"watermark\":")) {
      ++markers;
    } else {
      got.insert(std::string(payload));
    }
  }
  CHECK_MESSAGE(got == reference_rows(kept), diff(got, reference_rows(kept)));
  CHECK(markers > 20);
}

TEST_CASE("rill query --state: killed with SIGKILL and restarted, the sink's log holds each row exactly once") {
  TempDir dir;
  const auto in_ep = tcp_endpoint(free_port());
  const auto out_ep = tcp_endpoint(free_port());
  const auto evs = make_events(4000);
  const std::string sink =
      "CREATE TABLE sums (k STRING, window_start TIMESTAMP(3), n BIGINT, total BIGINT)"
      " WITH ('topic' = 'out/sums', 'endpoint' = '" +
      out_ep + "');\n";
  Node node;
  auto pub = node.publisher(
      {.endpoint = in_ep, .topic = "in/events", .durability = Durability::persistent((dir / "in-log").string())});
  REQUIRE(pub.has_value());
  // The input trickles in over about 4 s while the query is killed and restarted.
  std::thread feeder([&] {
    for (std::size_t i = 0; i < evs.size(); ++i) {
      const auto& e = evs[i];
      const std::string json =
          "{\"k\":\"" + e.k + "\",\"v\":" + std::to_string(e.v) + ",\"ts\":" + std::to_string(e.ts) + "}";
      while (!pub->publish_text(json)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (i % 4 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(4));
    }
  });
  std::mt19937 rng(5);
  const std::vector<std::string> args{"query",           in_ep,
                                      "--sql",           table + sink + "INSERT INTO sums " + query,
                                      "--state",         (dir / "state").string(),
                                      "--checkpoint-ms", "30",
                                      "--idle-exit-ms",  "2500"};
  int kills = 0;
  for (int round = 0;; ++round) {
    auto q = spawn_rill(dir, "query" + std::to_string(round), args);
    if (round < 5) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 500));
      if (q->wait(std::chrono::milliseconds(1)).describe() == "exit 0") break;  // already done
      q->kill(SIGKILL);
      (void)q->wait(10s);
      ++kills;
      continue;
    }
    feeder.join();
    REQUIRE(q->wait(60s).describe() == "exit 0");
    break;
  }
  if (feeder.joinable()) feeder.join();
  CHECK(kills >= 3);
  auto log = spawn_rill(dir, "inspect", {"log", "inspect", (dir / "state" / "sink-log").string(), "--format", "text"});
  REQUIRE(log->wait(60s).describe() == "exit 0");
  std::vector<Ev> kept;
  long long max_seen = std::numeric_limits<long long>::min();
  for (const auto& e : evs) {
    const bool late = max_seen != std::numeric_limits<long long>::min() && e.ts < max_seen - 200;
    max_seen = std::max(max_seen, e.ts);
    if (!late) kept.push_back(e);
  }
  std::multiset<std::string> got;
  const std::string out = log->out();
  for (const auto line : lines(out)) {
    const auto brace = line.find('{');
    if (brace == std::string_view::npos || line.substr(brace).starts_with("{\"watermark\":")) continue;
    got.insert(std::string(line.substr(brace)));
  }
  CHECK_MESSAGE(got == reference_rows(kept), diff(got, reference_rows(kept)));
}

TEST_CASE("rill query: a semantic error exits 2 with line:column") {
  TempDir dir;
  auto q = spawn_rill(dir, "bad", {"query", tcp_endpoint(free_port()), "--sql", table + "SELECT k, price FROM t"});
  REQUIRE(q->wait(30s).describe() == "exit 2");
  CHECK(q->err() == "rill: 2:11: unknown column 'price'\n");
  auto u = spawn_rill(dir, "usage", {"query", tcp_endpoint(free_port())});
  REQUIRE(u->wait(30s).describe() == "exit 2");
}

}  // namespace rill::e2e
