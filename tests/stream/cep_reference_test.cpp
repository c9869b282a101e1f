// The CEP operator against a brute-force reference on random patterns and out-of-order
// input, and checkpoint/restore at random points against a run that never stopped.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>

#include "fuzz/cep_fuzz_patterns.hpp"
#include "stream/cep_harness.hpp"
#include "temp_dir.hpp"
#include "test_seed.hpp"

using namespace ceptest;
using namespace std::chrono_literals;

namespace {

double v(const cep::Event* e) {
  return cep::field(e, 0);
}

/// A random flat pattern: 1-3 variables with random quantifiers and conditions from a
/// menu that reads the current row, PREV, LAST of an earlier variable and a SUM.
struct RandomPattern {
  std::vector<RefVar> vars;
  std::map<std::string, cep::Condition> define;
  std::optional<TimeMs> within;
  cep::Skip skip = cep::Skip::past_last_row;
  std::string skip_to;

  cep::Pattern pattern() const {
    std::vector<cep::PatternNode> parts;
    for (const auto& rv : vars) {
      auto n = cep::var(rv.name).between(rv.min, rv.max);
      parts.push_back(rv.greedy ? n : n.reluctant());
    }
    cep::Pattern p{.root = cep::seq(parts), .define = define, .skip = skip, .skip_to = skip_to};
    if (within) p.within = std::chrono::milliseconds(*within);
    return p;
  }
};

RandomPattern random_pattern(std::mt19937_64& rng) {
  RandomPattern r;
  const int n = std::uniform_int_distribution<int>(1, 3)(rng);
  const std::vector<std::pair<std::uint32_t, std::uint32_t>> quantifiers{
      {1, 1}, {0, 1}, {0, cep::Quantifier::unbounded}, {1, cep::Quantifier::unbounded},
      {2, 2}, {1, 3}, {2, cep::Quantifier::unbounded}};
  for (int i = 0; i < n; ++i) {
    const auto [lo, hi] = quantifiers[rng() % quantifiers.size()];
    std::string name(1, static_cast<char>('A' + i));
    r.vars.push_back({.name = name, .min = lo, .max = hi, .greedy = rng() % 2 == 0});
    const std::string earlier = i > 0 ? std::string(1, static_cast<char>('A' + rng() % i)) : name;
    switch (rng() % 6) {
      case 0:
        break;  // no DEFINE: any row
      case 1:
        r.define[name] = [](const cep::MatchView& m) { return v(&m.current()) >= 50; };
        break;
      case 2:
        r.define[name] = [](const cep::MatchView& m) { return v(&m.current()) < 50; };
        break;
      case 3:
        r.define[name] = [](const cep::MatchView& m) { return m.prev() == nullptr || v(&m.current()) > v(m.prev()); };
        break;
      case 4:
        r.define[name] = [earlier](const cep::MatchView& m) {
          const cep::Event* l = m.last(earlier, m.classifier(m.size() - 1) == earlier ? 1 : 0);
          return l == nullptr || v(&m.current()) <= v(l) + 20;
        };
        break;
      default:
        r.define[name] = [name](const cep::MatchView& m) { return m.sum(name, 0) < 150; };
        break;
    }
  }
  if (rng() % 2 == 0) r.within = std::uniform_int_distribution<TimeMs>(3, 25)(rng);
  const auto& target = r.vars[rng() % r.vars.size()].name;
  switch (rng() % 4) {
    case 0:
      r.skip = cep::Skip::past_last_row;
      break;
    case 1:
      r.skip = cep::Skip::to_next_row;
      break;
    case 2:
      r.skip = cep::Skip::to_first;
      r.skip_to = target;
      break;
    default:
      r.skip = cep::Skip::to_last;
      r.skip_to = target;
      break;
  }
  return r;
}

/// Events of `keys` keys from two sources over [0, span), each source's arrival up to
/// `disorder` ms out of order (so never behind the watermark with that out-of-orderness).
std::vector<cep::Event> random_events(std::mt19937_64& rng, int keys, int per_source, TimeMs span, TimeMs disorder) {
  std::vector<std::vector<std::pair<TimeMs, cep::Event>>> sources(2);
  for (std::uint64_t s = 0; s < 2; ++s) {
    for (int i = 0; i < per_source; ++i) {
      std::string key(1, 'k');
      key += std::to_string(rng() % keys);
      cep::Event e{.key = key,
                   .time = static_cast<TimeMs>(rng() % span),
                   .source = 7 + s,
                   .sequence = 0,
                   .values = {static_cast<double>(rng() % 100)},
                   .payload = "p"};
      const TimeMs at = e.time + static_cast<TimeMs>(rng() % (disorder + 1));
      sources[s].emplace_back(at, std::move(e));
    }
    std::stable_sort(sources[s].begin(), sources[s].end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::uint64_t seq = 1;
    for (auto& [at, e] : sources[s]) e.sequence = seq++;
  }
  std::vector<cep::Event> out;
  std::size_t a = 0, b = 0;
  while (a < sources[0].size() || b < sources[1].size()) {
    const bool first = b == sources[1].size() || (a < sources[0].size() && rng() % 2 == 0);
    out.push_back(std::move(first ? sources[0][a++].second : sources[1][b++].second));
  }
  return out;
}

}  // namespace

TEST_CASE("random patterns over out-of-order input give the brute-force reference's matches") {
  std::mt19937_64 rng(rilltest::test_seed());
  std::uint64_t total = 0;
  for (int round = 0; round < 200; ++round) {
    const RandomPattern rp = random_pattern(rng);
    const auto events = random_events(rng, 3, 18, 60, 6);
    cep::Stats stats;
    // Both sources count from the start: else the first one alone would move the watermark.
    auto got = run(rp.pattern(), {.watermark = {.out_of_orderness = 6ms, .min_sources = 2}}, events, &stats);
    auto want = reference(events, rp.vars, rp.define, rp.within, rp.skip, rp.skip_to, 1);
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    INFO("round " << round << ": " << cep::to_string(rp.pattern().root) << " skip " << static_cast<int>(rp.skip)
                  << " to " << rp.skip_to << " within " << rp.within.value_or(-1));
    if (got != want) {
      auto show = [](const std::vector<Got>& gs) {
        std::string s;
        for (const auto& g : gs) {
          s += g.key;  // appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "a" + b
          s += '#';
          s += std::to_string(g.number);
          s += ':';
          for (const auto& [t, var] : g.rows) {
            s += ' ';
            s += std::to_string(t);
            s += var;
          }
          s += '\n';
        }
        return s;
      };
      MESSAGE("got:\n" << show(got) << "want:\n" << show(want));
    }
    REQUIRE(got.size() == want.size());
    CHECK(got == want);
    CHECK(stats.late_dropped == 0);
    total += got.size();
  }
  CHECK(total > 200);  // the rounds found matches to compare, not only empty results
}

TEST_CASE("restored from a checkpoint taken at a random point, the output equals a run that never stopped") {
  std::mt19937_64 rng(rilltest::test_seed() + 1);
  rilltest::TempDir dir;
  const std::string path = (dir.path() / "cep.ckpt").string();
  for (int round = 0; round < 40; ++round) {
    const RandomPattern rp = random_pattern(rng);
    const auto events = random_events(rng, 3, 30, 100, 6);
    cep::Options options;  // assigned, not designated: GCC 12 warns falsely on the std::function inside
    options.watermark.out_of_orderness = 6ms;
    options.watermark.min_sources = 2;
    options.rows_per_match = rng() % 2 ? cep::RowsPerMatch::one : cep::RowsPerMatch::all;
    options.measures = {{"n", [](const cep::MatchView& m) { return cep::Value{static_cast<std::int64_t>(m.size())}; }}};
    std::vector<Got> whole, resumed;
    std::uint64_t rows_whole = 0, rows_resumed = 0;
    auto into = [](std::vector<Got>& out, std::uint64_t& rows) {
      return cep::Output{.match = [&out](const cep::Match& m) { out.push_back(got_of(m)); },
                         .row = [&rows](const cep::MatchRow&) { ++rows; }};
    };
    auto a = cep::Operator::create(rp.pattern(), options, into(whole, rows_whole));
    REQUIRE(a.has_value());
    for (const auto& e : events) a->process(e);
    a->finish();

    const std::size_t cut = rng() % (events.size() + 1);
    auto b = cep::Operator::create(rp.pattern(), options, into(resumed, rows_resumed));
    REQUIRE(b.has_value());
    for (std::size_t i = 0; i < cut; ++i) b->process(events[i]);
    REQUIRE(b->checkpoint(path, {{7, cut}}).has_value());
    const std::size_t before = resumed.size();
    const std::uint64_t rows_before = rows_resumed;
    auto c = cep::Operator::create(rp.pattern(), options, into(resumed, rows_resumed));
    REQUIRE(c.has_value());
    auto pos = c->restore(path);
    REQUIRE(pos.has_value());
    CHECK(pos->inputs.at(7) == cut);
    CHECK(pos->outputs == before + rows_before);
    CHECK(c->stats().buffered == b->stats().buffered);
    CHECK(c->stats().retained == b->stats().retained);
    for (std::size_t i = cut; i < events.size(); ++i) c->process(events[i]);
    c->finish();
    CHECK(resumed == whole);
    CHECK(rows_resumed == rows_whole);
    CHECK(c->stats().matches == a->stats().matches);
  }
}

TEST_CASE("damaged and foreign CEP checkpoints are refused and leave the operator empty") {
  rilltest::TempDir dir;
  const std::string path = (dir.path() / "cep.ckpt").string();
  const cep::Pattern pattern{.root = cep::seq({cep::var("A"), cep::var("B").plus()}), .within = 50ms};
  const cep::Options options{.watermark = {.out_of_orderness = 2ms}};
  auto a = cep::Operator::create(pattern, options, {});
  REQUIRE(a.has_value());
  for (const auto& e : series("k", {1, 2, 3, 4, 5, 6, 7, 8})) a->process(e);
  REQUIRE(a->checkpoint(path, {{1, 8}}).has_value());
  std::ifstream f(path, std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  REQUIRE(good.size() > 24);

  auto fresh = [&] {
    auto op = cep::Operator::create(pattern, options, {});
    REQUIRE(op.has_value());
    return std::move(*op);
  };
  auto code_of = [](const rill::Result<rill::stream::Positions>& r) { return r ? rill::Errc{} : r.error().code; };
  auto b = fresh();
  std::string flipped = good;
  flipped[good.size() - 3] ^= 0x40;  // the checksum no longer holds
  CHECK(code_of(b.restore_bytes(flipped)) == rill::Errc::corrupt);
  CHECK(code_of(b.restore_bytes(good.substr(0, good.size() - 5))) == rill::Errc::corrupt);
  CHECK(code_of(b.restore_bytes("RILLSCK1 a window operator's file")) == rill::Errc::corrupt);
  CHECK(code_of(b.restore((dir.path() / "missing").string())) == rill::Errc::io_error);
  CHECK(b.stats().retained == 0);
  CHECK(b.stats().buffered == 0);
  CHECK(b.stats().events == 0);

  auto other = cep::Operator::create({.root = cep::seq({cep::var("A"), cep::var("B").star()})}, options, {});
  REQUIRE(other.has_value());
  CHECK(code_of(other->restore_bytes(good)) == rill::Errc::incompatible);

  // After the refusals the same operator still takes the good checkpoint.
  auto pos = b.restore_bytes(good);
  REQUIRE(pos.has_value());
  CHECK(pos->inputs.at(1) == 8);
  CHECK(b.stats().events == 8);
  CHECK(b.stats().retained + b.stats().buffered == a->stats().retained + a->stats().buffered);
  CHECK(code_of(b.restore_bytes(good)) == rill::Errc::invalid_argument);  // not fresh any more
}

TEST_CASE("seeds for the checkpoint fuzz target (written only when RILL_CEP_CORPUS_DIR is set)") {
  // Each seed: the fuzz target's variant byte, then a checkpoint of that variant taken
  // mid-stream (events waiting for the watermark, partial matches pending).
  const char* out = std::getenv("RILL_CEP_CORPUS_DIR");
  rilltest::TempDir dir;
  const std::string path = (dir.path() / "seed.ckpt").string();
  for (std::size_t variant = 0; variant < 3; ++variant) {
    for (std::size_t cut : {0, 7, 19}) {
      auto [pattern, options] = rill::fuzz::cep_variant(variant);
      auto op = cep::Operator::create(std::move(pattern), std::move(options), {});
      REQUIRE(op.has_value());
      for (std::size_t i = 0; i < cut; ++i) {
        op->process({.key = i % 3 ? "a" : "b",
                     .time = static_cast<TimeMs>(i * 4 - i % 2 * 3),
                     .source = 1 + i % 2,
                     .sequence = i,
                     .values = {static_cast<double>((i * 37) % 100)},
                     .payload = "x"});
      }
      REQUIRE(op->checkpoint(path, {{1, cut}}).has_value());
      std::ifstream f(path, std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      auto again = rill::fuzz::cep_variant(variant);
      auto check = cep::Operator::create(std::move(again.first), std::move(again.second), {});
      REQUIRE(check.has_value());
      CHECK(check->restore_bytes(bytes).has_value());  // a seed the target accepts
      if (out == nullptr) continue;
      std::string name = "variant-";
      name += std::to_string(variant);
      name += "-cut-";
      name += std::to_string(cut);
      std::ofstream seed(std::string(out) + "/" + name, std::ios::binary);
      seed.put(static_cast<char>(variant));
      seed << bytes;
    }
  }
}
