// join_job: a left outer join with a TTL that survives kill -9, for stream_join_crash_test.
// Usage: join_job IN_ENDPOINT OUT_ENDPOINT STATE_DIR OUT_LOG_DIR LAST_SEQUENCE
// Reads both inputs from "in/" through one durable subscription (records tagged with their
// side), publishes the changelog rows on "out/joined" through a persistent publisher (log in
// OUT_LOG_DIR), checkpoints every 40 records into STATE_DIR and only then acknowledges the
// input. Restarted, it resumes from the checkpoint. Exits 0 (printing "done") once the
// input's LAST_SEQUENCE is in a checkpoint, 1 on errors.
#include "join_job.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "rill/rill.hpp"
#include "rill/stream.hpp"

namespace rs = rill::stream;
using namespace std::chrono_literals;

namespace {

int fail(const char* what, const rill::Error& e) {
  std::fprintf(stderr, "join_job: %s: %s\n", what, e.message().c_str());
  return 1;
}

bool finished(const std::map<std::uint64_t, std::uint64_t>& positions, std::uint64_t last) {
  return !positions.empty() && positions.begin()->second >= last;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: join_job IN_ENDPOINT OUT_ENDPOINT STATE_DIR OUT_LOG_DIR LAST_SEQUENCE\n");
    return 2;
  }
  const std::string in_ep = argv[1], out_ep = argv[2], state_dir = argv[3], out_log = argv[4];
  const std::uint64_t last = std::stoull(argv[5]);
  const std::string ckpt = state_dir + "/join.ckpt";
  rill::Node node;
  auto out = node.publisher({.endpoint = out_ep,
                             .topic = "out/joined",
                             .durability = rill::Durability::persistent(out_log),
                             .log = {.fsync = rill::FsyncPolicy::always()}});
  if (!out) return fail("output publisher", out.error());
  rs::JoinSink sink(*out);
  auto join = rs::JoinOperator::create(join_job_options(), sink.output());
  if (!join) return fail("join", join.error());
  rs::Positions pos;
  if (std::filesystem::exists(ckpt)) {
    auto restored = join->restore(ckpt);
    if (!restored) return fail("restore", restored.error());
    pos = *restored;
  }
  // Without a checkpoint too: a run killed before its first one published from output 0.
  sink.resume(pos.outputs);
  if (finished(pos.inputs, last)) {
    std::printf("done (already)\n");
    return 0;
  }
  auto in = node.subscriber({.endpoints = {in_ep},
                             .prefix = "in/",
                             .policy = rill::Policy::backpressure(64),
                             .durability = rill::Durability::persistent(),
                             .durable_name = "join",
                             .state_dir = state_dir,
                             .auto_ack = false,
                             .handled_on_ack = true});
  if (!in) return fail("input subscription", in.error());
  auto source = rs::JoinSource::create(*in, join_job_source());
  if (!source) return fail("source", source.error());
  source->resume(pos);

  std::uint64_t since = 0;
  auto checkpoint = [&]() -> int {
    if (auto r = join->checkpoint(ckpt, source->positions()); !r) return fail("checkpoint", r.error());
    // Only what a checkpoint holds is acknowledged: after a crash the rest comes again.
    for (const auto& [id, seq] : source->positions()) {
      if (auto r = in->ack(id, seq); !r) return fail("ack", r.error());
    }
    since = 0;
    return 0;
  };
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!finished(source->positions(), last)) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "join_job: input stalled at %llu records\n",
                   static_cast<unsigned long long>(source->stats().events));
      return 1;
    }
    const std::uint64_t before = source->stats().events;
    source->poll(*join, 16, 10ms);
    since += source->stats().events - before;
    if (since >= 40 && checkpoint() != 0) return 1;
  }
  join->finish();
  if (checkpoint() != 0) return 1;
  if (sink.stats().failed > 0) return fail("publish", *sink.last_error());
  std::printf("done records=%llu skipped_outputs=%llu\n", static_cast<unsigned long long>(source->stats().events),
              static_cast<unsigned long long>(sink.stats().skipped));
  return 0;
}
