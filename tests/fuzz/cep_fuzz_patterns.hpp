// The CEP operators the checkpoint fuzz target restores into, shared with the test that
// writes its seed corpus (so the seeds are checkpoints each of them accepts).
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "rill/stream/cep.hpp"

namespace rill::fuzz {

/// Operator settings number `i` (taken modulo cep_variants()).
inline std::pair<rill::stream::cep::Pattern, rill::stream::cep::Options> cep_variant(std::size_t i) {
  namespace cep = rill::stream::cep;
  using namespace std::chrono_literals;
  auto low = [](const cep::MatchView& m) { return cep::field(&m.current(), 0) < 50; };
  auto rising = [](const cep::MatchView& m) {
    return m.prev() == nullptr || cep::field(&m.current(), 0) > cep::field(m.prev(), 0);
  };
  cep::Options options;
  options.watermark.out_of_orderness = 5ms;
  options.watermark.clock = [] { return std::int64_t{0}; };
  options.measures = {{"n", [](const cep::MatchView& m) { return cep::Value{static_cast<std::int64_t>(m.size())}; }}};
  switch (i % 3) {
    case 0:
      return {cep::Pattern{.root = cep::seq({cep::var("A"), cep::var("B").plus(), cep::var("C")}),
                           .define = {{"A", low}, {"B", rising}}},
              options};
    case 1:
      options.rows_per_match = cep::RowsPerMatch::all;
      return {cep::Pattern{.root = cep::seq({cep::var("A").plus().reluctant(), cep::var("B")}),
                           .define = {{"B", rising}},
                           .within = 20ms,
                           .skip = cep::Skip::to_next_row},
              options};
    default:
      return {cep::Pattern{.root = cep::seq({cep::alt({cep::var("A"), cep::var("B")}).between(1, 3), cep::var("C")}),
                           .define = {{"A", low}, {"C", rising}},
                           .within = 50ms,
                           .skip = cep::Skip::to_last,
                           .skip_to = "C"},
              options};
  }
}

}  // namespace rill::fuzz
