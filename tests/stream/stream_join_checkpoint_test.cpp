// Join checkpoints: a join restored from a checkpoint taken mid-stream and fed the input after
// it gives, row for row, the output of a run that never stopped, for every join kind; through
// a JoinSink on a persistent-style sequence nothing is published twice. Damaged and foreign
// checkpoints are refused and leave the operator fresh.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "join_reference.hpp"
#include "temp_dir.hpp"
#include "test_seed.hpp"

namespace rs = rill::stream;
using namespace std::chrono_literals;
using jointest::Arrival;
using jointest::TimeMs;

namespace {

std::vector<rs::JoinOptions> all_kinds() {
  const rs::WatermarkOptions wm{.out_of_orderness = 30ms, .clock = [] { return std::int64_t{0}; }};
  return {
      {.kind = rs::JoinKind::window, .window = rs::tumbling(100ms), .watermark = wm},
      {.kind = rs::JoinKind::window, .window = rs::hopping(100ms, 40ms), .watermark = wm},
      {.kind = rs::JoinKind::interval, .lower = 20ms, .upper = 50ms, .watermark = wm},
      {.kind = rs::JoinKind::regular_inner, .ttl = 150ms, .watermark = wm},
      {.kind = rs::JoinKind::regular_left_outer, .ttl = 150ms, .watermark = wm},
      {.kind = rs::JoinKind::regular_left_outer, .watermark = wm},
  };
}

// Every output of a join, appended to `log` as text.
rs::JoinOutput logging(std::vector<std::string>& log) {
  return {.row =
              [&log](const rs::JoinRow& r) {
                log.push_back(std::string(rs::to_string(r.kind)) + " " + rs::join_row_json(r));
              },
          .watermark = [&log](TimeMs w) { log.push_back("W " + std::to_string(w)); }};
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("restored from a checkpoint mid-stream, every join kind gives the output of a run that never stopped") {
  std::mt19937_64 rng(rilltest::test_seed());
  rilltest::TempDir dir;
  const std::string path = (dir / "join.ckpt").string();
  for (const auto& options : all_kinds()) {
    for (int round = 0; round < 4; ++round) {
      const auto input = jointest::random_input(rng, 2, 80, 4, 1200, 30, 0.1);
      std::vector<std::string> whole;
      {
        auto op = rs::JoinOperator::create(options, logging(whole));
        REQUIRE(op);
        for (const auto& a : input) op->process(a.side, a.event);
        op->finish();
      }
      const std::size_t cut = std::uniform_int_distribution<std::size_t>(0, input.size())(rng);
      std::vector<std::string> first, second;
      std::map<std::uint64_t, std::uint64_t> positions;
      {
        auto op = rs::JoinOperator::create(options, logging(first));
        REQUIRE(op);
        for (std::size_t i = 0; i < cut; ++i) {
          op->process(input[i].side, input[i].event);
          positions[input[i].event.source] = input[i].event.sequence;
        }
        REQUIRE(op->checkpoint(path, positions));
        // The crashed run went on past its checkpoint; those outputs are lost with it.
        for (std::size_t i = cut; i < std::min(input.size(), cut + 20); ++i) op->process(input[i].side, input[i].event);
      }
      auto op = rs::JoinOperator::create(options, logging(second));
      REQUIRE(op);
      auto pos = op->restore(path);
      REQUIRE(pos);
      CHECK(pos->inputs == positions);
      first.resize(pos->outputs);  // what was emitted up to the checkpoint
      // A durable subscription re-delivers what follows each publisher's saved position.
      for (const auto& a : input) {
        auto it = pos->inputs.find(a.event.source);
        if (it != pos->inputs.end() && a.event.sequence <= it->second) continue;
        op->process(a.side, a.event);
      }
      op->finish();
      first.insert(first.end(), second.begin(), second.end());
      CAPTURE(static_cast<int>(options.kind));
      CAPTURE(cut);
      CHECK(first == whole);
    }
  }
}

TEST_CASE("damaged, foreign and mismatched join checkpoints are refused and leave the operator fresh") {
  rilltest::TempDir dir;
  const std::string path = (dir / "join.ckpt").string();
  const auto kinds = all_kinds();
  std::vector<std::string> log;
  auto op = rs::JoinOperator::create(kinds[2], logging(log));
  REQUIRE(op);
  op->process(rs::Side::left, {.key = "k", .payload = "\"a\"", .time = 100, .source = 1, .sequence = 1});
  op->process(rs::Side::right, {.key = "k", .payload = "\"b\"", .time = 120, .source = 2, .sequence = 1});
  REQUIRE(op->checkpoint(path, {{1, 1}, {2, 1}}));
  const std::string good = read_all(path);

  auto fresh = [&] { return rs::JoinOperator::create(kinds[2], {}).value(); };
  {
    auto other = rs::JoinOperator::create(kinds[0], {});
    REQUIRE(other);
    CHECK(other->restore_bytes(good).error().code == rill::Errc::incompatible);
  }
  for (std::size_t at : {std::size_t{3}, std::size_t{12}, good.size() / 2, good.size() - 1}) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x5a);
    auto f = fresh();
    CHECK(f.restore_bytes(bad).error().code == rill::Errc::corrupt);
  }
  {
    auto f = fresh();
    CHECK(f.restore_bytes(good.substr(0, good.size() - 5)).error().code == rill::Errc::corrupt);
  }
  {
    auto f = fresh();
    CHECK(f.restore((dir / "missing").string()).error().code == rill::Errc::io_error);
  }
  // A window checkpoint is not a join checkpoint.
  {
    auto w = rs::WindowOperator::create({}, {});
    REQUIRE(w);
    w->process({.key = "k", .value = 1, .time = 5, .source = 1});
    REQUIRE(w->checkpoint(path, {}));
    auto f = fresh();
    CHECK(f.restore(path).error().code == rill::Errc::corrupt);
    CHECK(f.stats().state_records == 0);
  }
  // A good one restores once, into a fresh operator only.
  auto f = fresh();
  auto pos = f.restore_bytes(good);
  REQUIRE(pos);
  CHECK(pos->outputs == 1);  // the one interval pair
  CHECK(f.stats().state_records == 2);
  CHECK(f.watermarks(rs::Side::right).sources() == 1);
  CHECK(f.restore_bytes(good).error().code == rill::Errc::invalid_argument);
}
