// Fuzz target: restoring a CEP operator from checkpoint bytes (rill::stream
// cep::Operator::restore_bytes). The first byte picks the operator (cep_fuzz_patterns.hpp),
// the rest is the file, whose length and checksum are set right first (when it has a
// header) so the fuzzer reaches the state parser behind them. Property: a refusal leaves
// an empty operator; an accepted state can be driven (events, end of input) without crashing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cep_fuzz_patterns.hpp"
#include "fuzz_check.hpp"

namespace cep = rill::stream::cep;

namespace {
// FNV-1a 64, as the checkpoint header uses.
std::uint64_t fnv1a(std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ull;
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}
void put_u64(std::string& s, std::size_t at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string file(reinterpret_cast<const char*>(data + 1), size - 1);
  if (file.size() >= 24 && file[0] == 'R') {
    put_u64(file, 8, file.size() - 24);
    put_u64(file, 16, fnv1a(std::string_view(file).substr(24)));
  }
  auto [pattern, options] = rill::fuzz::cep_variant(data[0]);
  auto op = cep::Operator::create(std::move(pattern), std::move(options), {});
  rill::fuzz::expect(op.has_value(), "options are valid");
  auto pos = op->restore_bytes(file);
  if (!pos) {
    const cep::Stats s = op->stats();
    rill::fuzz::expect(s.events == 0 && s.retained == 0 && s.buffered == 0 && s.keys == 0,
                       "a refused restore left state");
    return 0;
  }
  for (std::int64_t t : {0, 1000, 990, 5000}) {
    op->process(
        {.key = "k", .time = t, .source = 1, .sequence = 0, .values = {static_cast<double>(t % 97)}, .payload = {}});
  }
  op->finish();
  rill::fuzz::expect(op->stats().buffered == 0, "end of input leaves events waiting");
  return 0;
}
