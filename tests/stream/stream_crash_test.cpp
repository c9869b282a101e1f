// Exactly-once across kill -9: stream_job (a windowed job with checkpoints, a durable input
// subscription and a persistent output publisher) is killed with SIGKILL at random points
// and restarted each time; at the end its output log holds, message for message, what an
// uninterrupted run of the same operator gives.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <random>
#include <thread>

#include "e2e/process.hpp"
#include "stream_job.hpp"
#include "stream_reference.hpp"
#include "test_seed.hpp"
#include "test_util.hpp"

namespace rs = rill::stream;
using namespace std::chrono_literals;

TEST_CASE("a windowed job killed with SIGKILL at random points publishes the uninterrupted run's output once") {
  const std::uint64_t seed = rilltest::test_seed();
  std::mt19937_64 rng(seed);
  rill::e2e::TempDir work;
  const auto in_log = work.path() / "in-log";
  const auto out_log = work.path() / "out-log";
  const auto state = work.path() / "state";
  std::filesystem::create_directories(state);

  // The input: one publisher (one order of events), out of order within 40 ms against a
  // 20 ms bound, so late events, corrections and dropped ones are all in the output.
  const auto events = streamtest::random_input(rng, 1, 3000, 5, 20000, 40);
  std::vector<std::string> want;
  {
    auto op = rs::WindowOperator::create(job_options(),
                                         {.row = [&](const rs::Row& r) {
                                            want.push_back(std::string(rs::to_string(r.kind)) + " " + rs::row_json(r));
                                          },
                                          .watermark = [&](rs::TimeMs w) {
                                            want.push_back("W {\"watermark\":" + std::to_string(w) + "}");
                                          }});
    REQUIRE(op);
    for (const auto& e : events) op->process(e);
    op->finish();
    CHECK(op->stats().late_accepted > 0);
    CHECK(op->stats().corrections > 0);
  }

  rill::Node node;
  const auto in_ep = rilltest::fresh_endpoint();
  auto in = node.publisher({.endpoint = in_ep,
                            .topic = "in/events",
                            .durability = rill::Durability::persistent(in_log.string()),
                            .log = {.fsync = rill::FsyncPolicy::never()}});
  REQUIRE(in);
  for (const auto& e : events) {
    REQUIRE(in->publish_text(R"({"k":")" + e.key + R"(","v":)" + std::to_string(static_cast<int>(e.value)) +
                             R"(,"ts":)" + std::to_string(e.time) + "}"));
  }
  const std::string last = std::to_string(in->next_sequence() - 1);
  const auto out_ep = rilltest::fresh_endpoint();
  auto job = [&](int n) {
    return std::make_unique<rill::e2e::Process>(
        std::vector<std::string>{STREAM_JOB_PATH, in_ep, out_ep, state.string(), out_log.string(), last},
        work.path(), "job" + std::to_string(n));
  };

  // Kills at random points: at start-up, mid-stream, inside a checkpoint or an ack.
  const int kills = 50;
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
    // The job may end on its own between the check above and the kill: then it must have
    // ended cleanly, and the loop is over as if it had been seen finished.
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
                             .topic = "out/avg",
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
          got.push_back(std::string(op ? *op : "W") + " " + std::string(m.payload_text()));
        },
        256, 5ms);
  }
  sub->wait_poll([&](const rill::MessageView& m) { got.push_back("extra " + std::string(m.payload_text())); }, 256, 50ms);
  CHECK(out->next_sequence() - 1 == want.size());
  MESSAGE("received " << sub->stats().received << " gaps " << sub->stats().gaps << " dup " << sub->stats().duplicates << " publishers " << sub->stats().publishers
                      << " last seq " << out->next_sequence() - 1);
  REQUIRE(got.size() == want.size());
  std::size_t first_diff = 0;
  while (first_diff < got.size() && got[first_diff] == want[first_diff]) ++first_diff;
  if (first_diff < got.size()) {
    MESSAGE("first difference at output " << first_diff << ": got " << got[first_diff] << " want " << want[first_diff]);
    for (std::size_t i = first_diff; i < std::min(got.size(), first_diff + 6); ++i) MESSAGE(got[i] << "  |  " << want[i]);
  }
  CHECK(got == want);
}
