// Exactly-once across kill -9 for a join: join_job (a left outer join with a TTL, both
// inputs on one durable subscription, checkpoints, a persistent output publisher) is killed
// with SIGKILL at random points and restarted each time; at the end its output log holds,
// message for message, what an uninterrupted run of the same join gives.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <random>
#include <thread>

#include "e2e/process.hpp"
#include "join_job.hpp"
#include "join_reference.hpp"
#include "test_seed.hpp"
#include "test_util.hpp"

namespace rs = rill::stream;
using namespace std::chrono_literals;

TEST_CASE("a join killed with SIGKILL at random points publishes the uninterrupted run's changelog once") {
  std::mt19937_64 rng(rilltest::test_seed());
  rill::e2e::TempDir work;
  const auto in_log = work.path() / "in-log";
  const auto out_log = work.path() / "out-log";
  const auto state = work.path() / "state";
  std::filesystem::create_directories(state);

  // Both inputs in one order on one topic, out of order within 40 ms against a 20 ms bound
  // and 10% held back further: late records, retractions and TTL expiry all happen.
  auto input = jointest::random_input(rng, 1, 1200, 8, 12000, 40, 0.1);
  for (auto& a : input) {
    a.event.payload = std::string(R"({"side":")") + (a.side == rs::Side::left ? "L" : "R") + R"(","k":")" +
                      a.event.key + R"(","ts":)" + std::to_string(a.event.time) + R"(,"n":)" + a.event.payload + "}";
    a.event.source = 1;
  }
  std::vector<std::string> want;
  {
    auto join =
        rs::JoinOperator::create(join_job_options(), {.row = [&](const rs::JoinRow& r) {
                                   want.push_back(std::string(rs::to_string(r.kind)) + " " + rs::join_row_json(r));
                                 }});
    REQUIRE(join);
    for (const auto& a : input) join->process(a.side, a.event);
    join->finish();
    CHECK(join->stats().late_dropped > 0);
    CHECK(join->stats().retractions > 0);
    CHECK(join->stats().expired > 0);
  }

  rill::Node node;
  const auto in_ep = rilltest::fresh_endpoint();
  auto in = node.publisher({.endpoint = in_ep,
                            .topic = "in/records",
                            .durability = rill::Durability::persistent(in_log.string()),
                            .log = {.fsync = rill::FsyncPolicy::never()}});
  REQUIRE(in);
  for (const auto& a : input) REQUIRE(in->publish_text(a.event.payload));
  const std::string last = std::to_string(in->next_sequence() - 1);
  const auto out_ep = rilltest::fresh_endpoint();
  auto job = [&](int n) {
    return std::make_unique<rill::e2e::Process>(
        std::vector<std::string>{JOIN_JOB_PATH, in_ep, out_ep, state.string(), out_log.string(), last}, work.path(),
        "job" + std::to_string(n));
  };

  // Kills at random points: at start-up, mid-stream, inside a checkpoint or an ack.
  const int kills = 30;
  std::uniform_int_distribution<int> life_ms(5, 250);
  int killed = 0;
  for (int k = 0; k < kills; ++k) {
    auto p = job(k);
    std::this_thread::sleep_for(std::chrono::milliseconds(life_ms(rng)));
    if (!p->running()) {
      const auto st = p->wait(1s);
      INFO(p->err());
      REQUIRE(st.code == 0);
      break;
    }
    p->kill(SIGKILL);
    // The job may end on its own between the check above and the kill: then cleanly.
    const auto st = p->wait(10s);
    REQUIRE(!st.timed_out);
    if (!st.signaled) {
      INFO(p->err());
      REQUIRE(st.code == 0);
      break;
    }
    ++killed;
  }
  auto final_run = job(kills);
  const auto st = final_run->wait(60s);
  INFO(final_run->err());
  REQUIRE(st.code == 0);
  MESSAGE("killed " << killed << " times; last run: " << final_run->out());

  // Read the output log from its start, as a downstream consumer would.
  auto out = node.publisher({.endpoint = out_ep,
                             .topic = "out/joined",
                             .durability = rill::Durability::persistent(out_log.string()),
                             .log = {.fsync = rill::FsyncPolicy::always()}});
  REQUIRE(out);
  auto sub = node.subscriber({.endpoints = {out_ep},
                              .prefix = "out/",
                              .policy = rill::Policy::backpressure(256),
                              .durability = rill::Durability::persistent(),
                              .durable_name = "check",
                              .from = rill::StartFrom::start,
                              .state_dir = state.string()});
  REQUIRE(sub);
  std::vector<std::string> got;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (got.size() < want.size() && std::chrono::steady_clock::now() < deadline) {
    (void)out->service();
    sub->wait_poll(
        [&](const rill::MessageView& m) {
          const auto op = m.header("op");
          got.push_back(std::string(op ? *op : "?") + " " + std::string(m.payload_text()));
        },
        256, 5ms);
  }
  sub->wait_poll([&](const rill::MessageView& m) { got.push_back("extra " + std::string(m.payload_text())); }, 256,
                 50ms);
  CHECK(out->next_sequence() - 1 == want.size());
  REQUIRE(got.size() == want.size());
  std::size_t first_diff = 0;
  while (first_diff < got.size() && got[first_diff] == want[first_diff]) ++first_diff;
  if (first_diff < got.size()) {
    MESSAGE("first difference at output " << first_diff << ": got " << got[first_diff] << " want " << want[first_diff]);
  }
  CHECK(got == want);
}
