// Checkpoints: an operator restored from its last checkpoint and fed the input after the
// saved positions gives, message for message, the output of a run that never stopped;
// through a persistent publisher the restarted job's sink publishes nothing twice.
// Damaged, foreign and unsupported checkpoints are refused.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include "stream_reference.hpp"
#include "temp_dir.hpp"
#include "test_seed.hpp"
#include "test_util.hpp"

namespace rs = rill::stream;
using namespace std::chrono_literals;
using streamtest::TimeMs;

namespace {

// One output as text: a row with its kind, or a marker.
std::string text_of(const rs::Row& r) { return std::string(rs::to_string(r.kind)) + " " + rs::row_json(r); }
std::string text_of(TimeMs w) { return "W " + std::to_string(w); }

rs::OperatorOptions options_for(const rs::WindowSpec& spec, rs::Emit mode) {
  return {.window = spec,
          .aggregate = rs::avg(),
          .watermark = {.out_of_orderness = 20ms, .min_sources = 2, .clock = [] { return std::int64_t{0}; }},
          .emit = mode,
          .allowed_lateness = 50ms};
}

// Every output of `op`, appended to `log` as text.
rs::Output logging(std::vector<std::string>& log) {
  return {.row = [&log](const rs::Row& r) { log.push_back(text_of(r)); },
          .watermark = [&log](TimeMs w) { log.push_back(text_of(w)); }};
}

std::vector<std::string> uninterrupted(const std::vector<rs::Event>& input, const rs::OperatorOptions& o) {
  std::vector<std::string> log;
  auto op = rs::WindowOperator::create(o, logging(log));
  REQUIRE(op);
  for (const auto& e : input) op->process(e);
  op->finish();
  return log;
}

}  // namespace

TEST_CASE("restored from its last checkpoint, every window kind gives the output of a run that never stopped") {
  const std::uint64_t seed = rilltest::test_seed();
  std::mt19937_64 rng(seed);
  rilltest::TempDir dir;
  const std::string path = (dir / "job.ckpt").string();
  const std::vector<rs::WindowSpec> kinds = {rs::tumbling(100ms), rs::hopping(100ms, 40ms), rs::sliding(60ms),
                                             rs::session(25ms),   rs::count_window(5),       rs::global_window()};
  for (int round = 0; round < 5; ++round) {
    // Disorder 50 ms against a bound of 20 ms: late events and corrections are in the state too.
    const auto input = streamtest::random_input(rng, 2, 200, 4, 3000, 50);
    for (const auto& spec : kinds) {
      for (auto mode : {rs::Emit::final_only, rs::Emit::every_change}) {
        CAPTURE(seed);
        CAPTURE(round);
        CAPTURE(static_cast<int>(spec.kind));
        const auto o = options_for(spec, mode);
        const auto want = uninterrupted(input, o);

        // First run: checkpoints at random points, then "dies" at a later one.
        std::uniform_int_distribution<std::size_t> at(1, input.size() - 1);
        const std::size_t crash = at(rng);
        std::vector<std::string> published;
        std::map<std::uint64_t, std::uint64_t> positions;
        bool saved = false;
        {
          auto op = rs::WindowOperator::create(o, logging(published));
          REQUIRE(op);
          for (std::size_t i = 0; i < crash; ++i) {
            op->process(input[i]);
            positions[input[i].source] = input[i].sequence;
            if (rng() % 17 == 0) {
              REQUIRE(op->checkpoint(path, positions));
              saved = true;
            }
          }
        }
        if (!saved) std::filesystem::remove(path);
        // Second run: restore, skip what the checkpoint covers, drop outputs already published.
        std::vector<std::string> again;
        auto op = rs::WindowOperator::create(o, logging(again));
        REQUIRE(op);
        rs::Positions pos;
        if (saved) {
          auto restored = op->restore(path);
          REQUIRE(restored);
          pos = *restored;
        }
        for (const auto& e : input) {
          auto it = pos.inputs.find(e.source);
          if (it == pos.inputs.end() || e.sequence > it->second) op->process(e);
        }
        op->finish();
        REQUIRE(published.size() >= pos.outputs);
        const std::size_t duplicate = published.size() - pos.outputs;
        REQUIRE(again.size() >= duplicate);
        CHECK(std::equal(published.begin() + static_cast<std::ptrdiff_t>(pos.outputs), published.end(), again.begin()));
        published.insert(published.end(), again.begin() + static_cast<std::ptrdiff_t>(duplicate), again.end());
        CHECK(published == want);
      }
    }
  }
}

TEST_CASE("through a persistent publisher, a restarted job's sink publishes each output once") {
  std::mt19937_64 rng(rilltest::test_seed() + 1);
  rilltest::TempDir dir;
  rilltest::TempDir log_dir;
  const std::string path = (dir / "job.ckpt").string();
  const auto input = streamtest::random_input(rng, 2, 150, 3, 2000, 30);
  const auto o = options_for(rs::tumbling(50ms), rs::Emit::final_only);
  const auto want = uninterrupted(input, o);

  rill::Node node;
  const auto ep = rilltest::fresh_endpoint();
  const rill::PublisherOptions popts{.endpoint = ep,
                                     .topic = "out/avg",
                                     .durability = rill::Durability::persistent(log_dir.str()),
                                     .log = {.fsync = rill::FsyncPolicy::never()}};
  std::map<std::uint64_t, std::uint64_t> positions;
  {
    auto pub = node.publisher(popts);
    REQUIRE(pub);
    rs::PublisherSink sink(*pub);
    auto op = rs::WindowOperator::create(o, sink.output());
    REQUIRE(op);
    for (std::size_t i = 0; i < input.size() * 2 / 3; ++i) {
      op->process(input[i]);
      positions[input[i].source] = input[i].sequence;
      if (i == input.size() / 3) REQUIRE(op->checkpoint(path, positions));
    }
    CHECK(sink.stats().rows > 0);
  }  // the job stops here, its outputs after the checkpoint already in the log
  {
    auto pub = node.publisher(popts);  // continues the log's id and sequence
    REQUIRE(pub);
    rs::PublisherSink sink(*pub);
    auto op = rs::WindowOperator::create(o, sink.output());
    REQUIRE(op);
    auto pos = op->restore(path);
    REQUIRE(pos);
    sink.resume(pos->outputs);
    for (const auto& e : input) {
      if (e.sequence > pos->inputs[e.source]) op->process(e);
    }
    op->finish();
    CHECK(sink.stats().skipped > 0);
    CHECK(sink.stats().failed == 0);

    // Everything in the log, from the start, is the uninterrupted run's output, once.
    auto sub = node.subscriber({.endpoints = {ep},
                                .prefix = "out/",
                                .policy = rill::Policy::backpressure(64),
                                .durability = rill::Durability::persistent(),
                                .durable_name = "check",
                                .from = rill::StartFrom::start,
                                .state_dir = dir.str()});
    REQUIRE(sub);
    std::vector<std::string> got;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (got.size() < want.size() && std::chrono::steady_clock::now() < deadline) {
      (void)pub->service();
      sub->wait_poll(
          [&](const rill::MessageView& m) {
            if (auto k = m.header("op")) {
              got.push_back(std::string(*k) + " " + std::string(m.payload_text()));
            } else {
              const auto t = m.payload_text();  // {"watermark":N}
              got.push_back("W " + std::string(t.substr(13, t.size() - 14)));
            }
          },
          64, 1ms);
    }
    CHECK(got == want);
  }
}

TEST_CASE("damaged, foreign and unsupported checkpoints are refused with their error") {
  rilltest::TempDir dir;
  const std::string path = (dir / "job.ckpt").string();
  const auto o = options_for(rs::session(10ms), rs::Emit::final_only);
  {
    auto op = rs::WindowOperator::create(o, {});
    REQUIRE(op);
    op->process({.key = "a", .value = 1, .time = 5, .source = 1, .sequence = 1});
    op->process({.key = "b", .value = 2, .time = 7, .source = 2, .sequence = 1});
    REQUIRE(op->checkpoint(path, {{1, 1}, {2, 1}}));
    CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  }
  std::string bytes;
  {
    std::ifstream f(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  auto fresh = [&](const rs::OperatorOptions& opts) { return *rs::WindowOperator::create(opts, {}); };
  {
    auto op = fresh(o);
    auto pos = op.restore_bytes(bytes);
    REQUIRE(pos);
    CHECK(pos->inputs == std::map<std::uint64_t, std::uint64_t>{{1, 1}, {2, 1}});
    CHECK(op.stats().open_windows == 2);
    CHECK(op.stats().events == 2);
    auto again = op.restore_bytes(bytes);  // no longer fresh
    REQUIRE_FALSE(again);
    CHECK(again.error().code == rill::Errc::invalid_argument);
  }
  for (std::size_t i = 0; i < bytes.size(); i += 7) {  // a flipped byte anywhere
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ 0x40);
    auto op = fresh(o);
    auto pos = op.restore_bytes(bad);
    REQUIRE_FALSE(pos);
    CHECK(pos.error().code == rill::Errc::corrupt);
    CHECK(op.stats().open_windows == 0);
  }
  for (std::size_t n : {std::size_t{0}, std::size_t{8}, bytes.size() / 2, bytes.size() - 1}) {  // torn
    auto op = fresh(o);
    auto pos = op.restore_bytes(std::string_view(bytes).substr(0, n));
    REQUIRE_FALSE(pos);
    CHECK(pos.error().code == rill::Errc::corrupt);
  }
  {
    auto op = fresh(options_for(rs::session(11ms), rs::Emit::final_only));
    auto pos = op.restore_bytes(bytes);
    REQUIRE_FALSE(pos);
    CHECK(pos.error().code == rill::Errc::incompatible);
  }
  {
    auto op = fresh(o);
    auto pos = op.restore((dir / "missing").string());
    REQUIRE_FALSE(pos);
    CHECK(pos.error().code == rill::Errc::io_error);
  }
  {
    // A state that is not trivially copyable cannot be saved.
    auto opts = o;
    opts.aggregate = rs::make_aggregate([] { return std::vector<double>{}; },
                                        [](std::vector<double>& s, double v) { s.push_back(v); },
                                        [](std::vector<double>& s, const std::vector<double>& x) {
                                          s.insert(s.end(), x.begin(), x.end());
                                        },
                                        [](const std::vector<double>& s) { return static_cast<double>(s.size()); });
    auto op = fresh(opts);
    op.process({.key = "a", .value = 1, .time = 5, .source = 1, .sequence = 1});
    auto r = op.checkpoint((dir / "v.ckpt").string(), {});
    REQUIRE_FALSE(r);
    CHECK(r.error().code == rill::Errc::unsupported);
  }
}

TEST_CASE("a checkpoint of each window kind restores to the same state size") {
  rilltest::TempDir dir;
  const std::vector<rs::WindowSpec> kinds = {rs::tumbling(100ms), rs::hopping(100ms, 40ms), rs::sliding(60ms),
                                             rs::session(25ms),   rs::count_window(5),       rs::global_window()};
  std::mt19937_64 rng(rilltest::test_seed() + 2);
  const auto input = streamtest::random_input(rng, 2, 40, 3, 600, 50);
  for (std::size_t k = 0; k < kinds.size(); ++k) {
    // The fuzz target's options: its first byte picks kinds[k].
    auto o = options_for(kinds[k], rs::Emit::final_only);
    o.watermark.min_sources = 0;
    auto op = rs::WindowOperator::create(o, {});
    REQUIRE(op);
    for (const auto& e : input) op->process(e);
    const std::string path = (dir / "k.ckpt").string();
    REQUIRE(op->checkpoint(path, {{1, 2}}));
    auto copy = rs::WindowOperator::create(o, {});
    REQUIRE(copy);
    REQUIRE(copy->restore(path));
    CHECK(copy->stats().open_windows == op->stats().open_windows);
    CHECK(copy->watermark() == op->watermark());
    if (const char* out = std::getenv("RILL_STREAM_CORPUS_OUT")) {  // seeds for fuzz_stream_checkpoint
      std::ifstream f(path, std::ios::binary);
      std::ofstream seed(std::string(out) + "/kind-" + std::to_string(k), std::ios::binary);
      seed.put(static_cast<char>(k));
      seed << f.rdbuf();
    }
  }
}
