// Fuzz target: restoring a join from checkpoint bytes (rill::stream JoinOperator::restore_bytes).
// The first byte picks the join kind, the rest is the file, whose length and checksum are set
// right first (when it has a header) so the fuzzer reaches the state parser behind them.
// Property: a refusal leaves a fresh operator; an accepted state can be driven (records on
// both inputs, watermark to the end) without crashing, and ends with no state held.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "rill/stream/join.hpp"

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
  const rs::WatermarkOptions wm{.out_of_orderness = 30ms, .clock = [] { return std::int64_t{0}; }};
  const std::array<rs::JoinOptions, 5> kinds = {{
      {.kind = rs::JoinKind::window, .window = rs::tumbling(100ms), .watermark = wm},
      {.kind = rs::JoinKind::window, .window = rs::hopping(100ms, 40ms), .watermark = wm},
      {.kind = rs::JoinKind::interval, .lower = 20ms, .upper = 50ms, .watermark = wm},
      {.kind = rs::JoinKind::regular_inner, .ttl = 150ms, .watermark = wm},
      {.kind = rs::JoinKind::regular_left_outer, .ttl = 150ms, .watermark = wm},
  }};
  auto op = rs::JoinOperator::create(kinds[data[0] % kinds.size()], {.row = [](const rs::JoinRow&) {}});
  rill::fuzz::expect(op.has_value(), "options are valid");
  auto pos = op->restore_bytes(file);
  if (!pos) {
    const auto s = op->stats();
    rill::fuzz::expect(s.state_records == 0 && s.left_events == 0 && op->watermarks(rs::Side::left).sources() == 0,
                       "a refused restore left state");
    return 0;
  }
  for (std::int64_t t : {0, 1000, 990, 5000}) {
    op->process(rs::Side::left, {.key = "k", .payload = "1", .time = t, .source = 1});
    op->process(rs::Side::right, {.key = "k", .payload = "2", .time = t, .source = 2});
  }
  op->finish();
  rill::fuzz::expect(op->stats().state_records == 0, "state held after the end of input");
  return 0;
}
