// Nexmark q0, q1, q2 in one process: rill query's executor (perf/nexmark/q*.sql over the bid
// rows' JSON) beside the hand-written reference (reference.hpp) in the same run, once over
// the generator's structs and once decoding the same JSON with simdjson first (the same
// input work as SQL). Prints bid events per second per core (thread CPU time) for each.
// Usage: rill_nexmark_sql_perf [EVENTS] (default 1,000,000 generated events).
#include <simdjson.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nexmark/generator.hpp"
#include "nexmark/reference.hpp"
#include "rill/sql_job.hpp"

namespace {

namespace nx = rill::nexmark;

double cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Result {
  double per_s = 0;
  std::uint64_t rows = 0;
};

Result run_sql(const std::string& file, const std::vector<std::string>& bids) {
  auto job = rill::sql::Job::compile(read(file));
  if (!job) {
    std::fprintf(stderr, "%s: %s\n", file.c_str(), job.error().to_string().c_str());
    std::exit(1);
  }
  std::uint64_t rows = 0;
  job->start({.row = [&](const rill::sql::OutputRow&) { ++rows; }});
  const double t0 = cpu_seconds();
  std::uint64_t seq = 0;
  for (const auto& b : bids) job->feed(b, 1, ++seq);
  job->finish();
  return {static_cast<double>(bids.size()) / (cpu_seconds() - t0), rows};
}

template <class Query>
Result run_structs(const std::vector<nx::Event>& evs, Query query) {
  std::uint64_t rows = 0;
  const double t0 = cpu_seconds();
  for (const auto& e : evs) query(e, [&](const auto&) { ++rows; });
  return {static_cast<double>(evs.size()) / (cpu_seconds() - t0), rows};
}

// The reference with the SQL side's input work: each bid decoded from its JSON into a Bid.
template <class Query>
Result run_json(const std::vector<std::string>& bids, Query query) {
  simdjson::dom::parser parser;
  std::uint64_t rows = 0;
  nx::Event e;
  e.kind = nx::EventKind::bid;
  const double t0 = cpu_seconds();
  for (const auto& b : bids) {
    simdjson::dom::element doc;
    if (parser.parse(b).get(doc) != simdjson::SUCCESS) continue;
    e.bid.auction = doc["auction"].get_int64().value_unsafe();
    e.bid.bidder = doc["bidder"].get_int64().value_unsafe();
    e.bid.price = doc["price"].get_int64().value_unsafe();
    e.bid.extra = std::string(doc["extra"].get_string().value_unsafe());
    query(e, [&](const auto&) { ++rows; });
  }
  return {static_cast<double>(bids.size()) / (cpu_seconds() - t0), rows};
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 1'000'000;
  nx::Generator gen({});
  std::vector<nx::Event> bid_events;
  std::vector<std::string> bids;
  for (long i = 0; i < n; ++i) {
    auto e = gen.next();
    if (e.kind != nx::EventKind::bid) continue;
    bids.push_back(nx::row_json(e));
    bid_events.push_back(std::move(e));
  }
  const std::string dir = RILL_NEXMARK_DIR;
  std::printf("nexmark in one process, %zu bid events of %ld generated; bid events/s per core (thread CPU time)\n",
              bids.size(), n);
  std::printf("%-4s %14s %14s %14s %8s %8s\n", "q", "sql", "ref(json)", "ref(structs)", "sql/ref", "rows");
  const auto line = [&](const char* q, Result sql, Result json, Result structs) {
    std::printf("%-4s %14.0f %14.0f %14.0f %8.2f %8llu%s\n", q, sql.per_s, json.per_s, structs.per_s,
                sql.per_s / json.per_s, static_cast<unsigned long long>(sql.rows),
                sql.rows == structs.rows && sql.rows == json.rows ? "" : "  ROW COUNTS DIFFER");
  };
  using namespace nx::reference;
  line("q0", run_sql(dir + "/q0.sql", bids), run_json(bids, [](const auto& e, auto&& o) { q0(e, o); }),
       run_structs(bid_events, [](const auto& e, auto&& o) { q0(e, o); }));
  line("q1", run_sql(dir + "/q1.sql", bids), run_json(bids, [](const auto& e, auto&& o) { q1(e, o); }),
       run_structs(bid_events, [](const auto& e, auto&& o) { q1(e, o); }));
  line("q2", run_sql(dir + "/q2.sql", bids), run_json(bids, [](const auto& e, auto&& o) { q2(e, o); }),
       run_structs(bid_events, [](const auto& e, auto&& o) { q2(e, o); }));
  return 0;
}
