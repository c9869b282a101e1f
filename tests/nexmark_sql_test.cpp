// Nexmark q0, q1 and q2 as SQL (perf/nexmark/q*.sql run by rill::sql::Job over the bid rows'
// JSON) give exactly the rows of the hand-written reference (perf/nexmark/reference.hpp, over
// the generator's structs) on 200,000 generated events.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nexmark/generator.hpp"
#include "nexmark/reference.hpp"
#include "rill/sql_job.hpp"

namespace {

namespace nx = rill::nexmark;
using rill::sql::OutputRow;
using rill::sql::Type;

constexpr int events = 200'000;

std::string script(const char* name) {
  std::ifstream in(std::string(RILL_NEXMARK_DIR) + "/" + name);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs a query file over the bids of the first `events` events; returns its rows.
std::vector<OutputRow> run_sql(const char* file) {
  auto job = rill::sql::Job::compile(script(file));
  REQUIRE_MESSAGE(job.has_value(), (job ? "" : job.error().to_string()));
  std::vector<OutputRow> rows;
  job->start({.row = [&](const OutputRow& r) { rows.push_back(r); }});
  nx::Generator gen({});
  std::uint64_t seq = 0;
  for (int i = 0; i < events; ++i) {
    const auto e = gen.next();
    if (e.kind == nx::EventKind::bid) REQUIRE(job->feed(nx::row_json(e), 1, ++seq));
  }
  job->finish();
  CHECK(job->stats().bad_input == 0);
  return rows;
}

template <class Row, class Query>
std::vector<Row> run_reference(Query query) {
  std::vector<Row> rows;
  nx::Generator gen({});
  for (int i = 0; i < events; ++i) query(gen.next(), [&](const Row& r) { rows.push_back(r); });
  return rows;
}

bool is_int(const rill::sql::Value& v, std::int64_t x) {
  return v.type == Type::bigint && v.i == x;
}

}  // namespace

TEST_CASE("q0 (pass through) equals the reference") {
  const auto sql = run_sql("q0.sql");
  const auto ref =
      run_reference<nx::reference::Q0Row>([](const nx::Event& e, auto&& out) { nx::reference::q0(e, out); });
  REQUIRE(sql.size() == ref.size());
  CHECK(ref.size() == 184'000);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const auto& v = sql[i].values;
    const bool ok = sql[i].kind == rill::stream::RowKind::insert && v.size() == 5 && is_int(v[0], ref[i].auction) &&
                    is_int(v[1], ref[i].bidder) && is_int(v[2], ref[i].price) && v[3].type == Type::timestamp &&
                    v[3].i == ref[i].date_time_ms && v[4].s == ref[i].extra;
    bad += ok ? 0 : 1;
  }
  CHECK(bad == 0);
}

TEST_CASE("q1 (currency conversion) equals the reference") {
  const auto sql = run_sql("q1.sql");
  const auto ref =
      run_reference<nx::reference::Q1Row>([](const nx::Event& e, auto&& out) { nx::reference::q1(e, out); });
  REQUIRE(sql.size() == ref.size());
  std::size_t bad = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const auto& v = sql[i].values;
    const bool ok = v.size() == 5 && is_int(v[0], ref[i].auction) && is_int(v[1], ref[i].bidder) &&
                    v[2].type == Type::double_ && v[2].d == ref[i].price && v[3].i == ref[i].date_time_ms &&
                    v[4].s == ref[i].extra;
    bad += ok ? 0 : 1;
  }
  CHECK(bad == 0);
}

TEST_CASE("q2 (selection) equals the reference") {
  const auto sql = run_sql("q2.sql");
  const auto ref =
      run_reference<nx::reference::Q2Row>([](const nx::Event& e, auto&& out) { nx::reference::q2(e, out); });
  REQUIRE(sql.size() == ref.size());
  CHECK(ref.size() > 10);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const auto& v = sql[i].values;
    bad += v.size() == 2 && is_int(v[0], ref[i].auction) && is_int(v[1], ref[i].price) ? 0 : 1;
  }
  CHECK(bad == 0);
}
