// Fuzz target: restoring a stream operator from checkpoint bytes (rill::stream
// WindowOperator::restore_bytes). The first byte picks the window kind, the rest is the
// file, whose length and checksum are set right first (when it has a header) so the fuzzer
// reaches the state parser behind them. Property: a refusal leaves an empty operator; an accepted state can be driven
// (events, watermark to the end) without crashing.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "rill/stream.hpp"

namespace rs = rill::stream;
using namespace std::chrono_literals;

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
  const std::array<rs::WindowSpec, 6> kinds = {rs::tumbling(100ms), rs::hopping(100ms, 40ms), rs::sliding(60ms),
                                               rs::session(25ms),   rs::count_window(5),       rs::global_window()};
  auto op = rs::WindowOperator::create({.window = kinds[data[0] % kinds.size()],
                                        .aggregate = rs::avg(),
                                        .watermark = {.out_of_orderness = 20ms, .clock = [] { return std::int64_t{0}; }},
                                        .allowed_lateness = 50ms},
                                       {});
  rill::fuzz::expect(op.has_value(), "options are valid");
  auto pos = op->restore_bytes(file);
  if (!pos) {
    rill::fuzz::expect(op->stats().open_windows == 0 && op->stats().events == 0, "a refused restore left state");
    return 0;
  }
  for (std::int64_t t : {0, 1000, 990, 5000}) op->process({.key = "k", .value = 1, .time = t, .source = 1});
  op->finish();
  return 0;
}
