// End-to-end: `rill nexmark gen` as a process. Its stdout is the same bytes on every run and
// equals the generator library's combined rows; with --publish, a `rill sub` on the one
// endpoint receives every event on its topic, in order, with the library's row as payload.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <array>
#include <map>
#include <string>
#include <vector>

#include "nexmark/generator.hpp"
#include "process.hpp"

namespace rill::e2e {

TEST_CASE("rill nexmark gen prints the same bytes each run: the library's combined rows, one a line") {
  TempDir dir;
  auto a = spawn_rill(dir, "gen_a", {"nexmark", "gen", "--events", "20000"});
  auto b = spawn_rill(dir, "gen_b", {"nexmark", "gen", "--events", "20000", "--format", "json"});
  REQUIRE(a->wait(60s).describe() == "exit 0");
  REQUIRE(b->wait(60s).describe() == "exit 0");
  const std::string out = a->out();
  CHECK(out == b->out());
  std::string expected;
  nexmark::Generator gen({});
  for (int i = 0; i < 20000; ++i) expected += nexmark::combined_json(gen.next()) + "\n";
  CHECK(out == expected);
  CHECK(a->err() == "{\"stats\":{\"events\":20000,\"person\":400,\"auction\":1200,\"bid\":18400}}\n");

  // A second generator continuing at event 20000 gives the events of one longer run there.
  auto c = spawn_rill(dir, "gen_c", {"nexmark", "gen", "--events", "3", "--first-event-id", "20000"});
  REQUIRE(c->wait(60s).describe() == "exit 0");
  const nexmark::Generator cont({.first_event_id = 20000});
  CHECK(c->out() == nexmark::combined_json(cont.event(0)) + "\n" + nexmark::combined_json(cont.event(1)) + "\n" +
                        nexmark::combined_json(cont.event(2)) + "\n");
}

TEST_CASE("rill nexmark gen --publish: each event on its topic, in order, on one endpoint") {
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  constexpr int events = 5000;
  auto gen = spawn_rill(dir, "gen", {"nexmark", "gen", "--events", std::to_string(events), "--publish", ep,
                                     "--wait-subs", "1", "--wait-ms", "20000"});
  auto sub = spawn_rill(dir, "sub", {"sub", ep, "nexmark/", "--format", "text", "--count", std::to_string(events),
                                     "--policy", "backpressure:1024"});
  REQUIRE(gen->wait(60s).describe() == "exit 0");
  REQUIRE(sub->wait(60s).describe() == "exit 0");

  // What each topic should carry, in order: the library's rows of that kind.
  std::map<std::string, std::vector<std::string>> expected;
  nexmark::Generator g({});
  for (int i = 0; i < events; ++i) {
    const auto e = g.next();
    expected[nexmark::topic_of(e.kind)].push_back(nexmark::row_json(e));
  }
  std::map<std::string, std::vector<std::string>> got;
  const std::string sub_out = sub->out();  // lines() views into it
  for (const auto line : lines(sub_out)) {
    if (line.empty() || line.starts_with("{\"stats\"")) continue;
    const auto sp1 = line.find(' ');
    const auto sp2 = line.find(' ', sp1 + 1);
    REQUIRE(sp2 != std::string_view::npos);
    got[std::string(line.substr(0, sp1))].push_back(std::string(line.substr(sp2 + 1)));
  }
  CHECK(got.size() == 3);
  CHECK(got["nexmark/person"].size() == 100);
  CHECK(got["nexmark/auction"].size() == 300);
  CHECK(got["nexmark/bid"].size() == 4600);
  CHECK(got == expected);
}

TEST_CASE("rill nexmark: usage errors exit 2 with one line") {
  TempDir dir;
  const std::vector<std::vector<std::string>> cases = {
      {"nexmark"}, {"nexmark", "run"}, {"nexmark", "gen", "--format", "avro"}, {"nexmark", "gen", "--events", "x"},
      {"nexmark", "gen", "--out-of-order-group", "0"}, {"nexmark", "gen", "--wait-subs", "1"}};
  int i = 0;
  for (const auto& args : cases) {
    auto p = spawn_rill(dir, "usage" + std::to_string(i++), args);
    CHECK(p->wait(10s).describe() == "exit 2");
    CHECK(p->err().starts_with("rill: "));
    CHECK(p->out().empty());
  }
}

}  // namespace rill::e2e
