// Fuzz target for the TCP batch-frame walker (for_each_in_batch, transport/tcp/tcp_wire.hpp).
//
// The subscriber hands each visited span to the envelope verifier in place, so the
// walker's promises are what keeps it in bounds and aligned: every span lies inside
// the frame, starts 8-aligned relative to the frame, the spans increase without
// overlapping, and a frame that lies anywhere (count or any length) visits nothing.
// Each visited byte is read so ASan reports a span reaching past the input.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "fuzz_check.hpp"
#include "transport/tcp/tcp_wire.hpp"

namespace {

namespace tcp = rill::detail::tcp;
using rill::fuzz::expect;

// Every value read lands here so the optimizer cannot drop the reads.
volatile std::uint64_t g_sink = 0;

std::uint32_t u32_at(std::span<const std::byte> frame, std::size_t at) {
  std::uint32_t v = 0;
  std::memcpy(&v, frame.data() + at, 4);
  return v;
}

std::size_t padded(std::size_t n) {
  return (n + 7) & ~std::size_t{7};
}

// Walks `frame`, checks every visit against the frame and the previous visit, and
// returns the walk's result with the spans it visited.
std::pair<bool, std::vector<std::pair<std::size_t, std::size_t>>> walk(std::span<const std::byte> frame) {
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  const bool ok = tcp::for_each_in_batch(frame, [&](std::size_t offset, std::size_t length) {
    expect(length > 0, "visited an empty envelope");
    expect(offset <= frame.size() && length <= frame.size() - offset, "visited span outside the frame");
    expect(offset % 8 == 0, "visited span not 8-aligned relative to the frame");
    expect(offset >= tcp::batch_header_bytes + tcp::batch_entry_header_bytes, "visited span overlaps the headers");
    if (!spans.empty()) {
      const auto [prev_offset, prev_length] = spans.back();
      expect(offset >= prev_offset + prev_length, "visited spans overlap or go backwards");
    }
    // Touch the span's first and last byte (and everything between): ASan catches overreads.
    std::uint64_t h = length;
    for (std::size_t i = 0; i < length; ++i) h = h * 131 + static_cast<std::uint8_t>(frame[offset + i]);
    g_sink = g_sink + h;
    spans.emplace_back(offset, length);
  });
  return {ok, std::move(spans)};
}

// A frame the walker accepted has exactly the documented layout: `count` entries, each
// a u32 length and 4 reserved bytes before its envelope, padded to 8, the last one's
// padding possibly cut by the end of the frame.
void check_layout(std::span<const std::byte> frame, const std::vector<std::pair<std::size_t, std::size_t>>& spans) {
  expect(frame.size() >= tcp::batch_header_bytes, "accepted a frame shorter than the batch header");
  expect(!spans.empty(), "accepted a batch and visited nothing");
  expect(u32_at(frame, 4) == spans.size(), "visited a different number of envelopes than the count says");
  std::size_t at = tcp::batch_header_bytes;
  for (const auto& [offset, length] : spans) {
    expect(offset == at + tcp::batch_entry_header_bytes, "visited span does not follow its entry header");
    expect(u32_at(frame, at) == length, "visited length differs from the entry header");
    at = offset + padded(length);
  }
  const auto& [last_offset, last_length] = spans.back();
  expect(frame.size() - (last_offset + last_length) < 8, "accepted a frame with bytes past the last envelope");
  expect(at >= frame.size(), "accepted a frame with an entry missing");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Exact-size heap copy: ASan's redzone starts right after the last input byte.
  auto buf = std::make_unique_for_overwrite<std::byte[]>(size);
  if (size != 0) std::memcpy(buf.get(), data, size);
  const std::span<const std::byte> frame{buf.get(), size};
  const bool magic = tcp::is_batch(frame);
  expect(magic == (size >= tcp::batch_header_bytes && std::memcmp(frame.data(), tcp::batch_magic, 4) == 0),
         "is_batch disagrees with the magic");
  expect(!(magic && tcp::is_control(frame)), "a frame is both a batch and a control frame");

  const auto [ok, spans] = walk(frame);
  if (!ok) {
    expect(spans.empty(), "returned false after visiting envelopes");
  } else {
    check_layout(frame, spans);
  }

  // Lengths are read with memcpy, so an odd address must walk the same way.
  auto shifted = std::make_unique_for_overwrite<std::byte[]>(size + 1);
  if (size != 0) std::memcpy(shifted.get() + 1, data, size);
  const auto [ok2, spans2] = walk({shifted.get() + 1, size});
  expect(ok2 == ok && spans2 == spans, "alignment changed the walk");
  return 0;
}
