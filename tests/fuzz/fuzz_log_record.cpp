// Fuzz target for the log's on-disk decoders (policies/log/format.hpp, the dead-letter body):
// the record walk recovery and readers do over a segment, the segment header, the index
// file and the dead-letter body. Properties: nothing is read outside the input; a record
// accepted lies inside it, has the documented size and layout, and its CRC verifies when
// recomputed by the independent table implementation; an accepted index re-encodes to the
// same bytes; an accepted dead letter's reason and envelope lie inside the body.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

#include "fuzz_check.hpp"
#include "policies/log/crc32c.hpp"
#include "policies/log/format.hpp"
#include "rill/dead_letter.hpp"

namespace {

namespace logfmt = rill::detail::logfmt;
using rill::fuzz::expect;

volatile std::uint64_t g_sink = 0;

bool inside(std::span<const std::byte> outer, std::span<const std::byte> inner) {
  return inner.empty() || (inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size());
}

void walk_records(std::span<const std::byte> data, std::size_t off) {
  logfmt::RecordView r;
  std::size_t n = 0;
  while (logfmt::check_record(data, off, 1u << 20, r) == logfmt::RecordCheck::ok) {
    expect(r.offset == off, "record offset differs from where it was read");
    expect(r.size == logfmt::record_size(r.body.size()), "record size does not match its body");
    expect(off + r.size <= data.size(), "accepted record runs past the data");
    expect(r.body.data() == data.data() + off + logfmt::record_header_bytes, "body not right after the header");
    std::uint32_t stored = 0;
    std::memcpy(&stored, data.data() + off + 4, 4);
    const auto crc = rill::detail::crc32c_portable(rill::detail::crc32c_portable(0, data.subspan(off, 4)),
                                                   data.subspan(off + 8, r.size - 8));
    expect(crc == stored, "accepted a record whose crc does not verify");
    std::uint64_t h = r.sequence;
    for (auto b : r.body) h = h * 131 + static_cast<std::uint8_t>(b);
    g_sink = g_sink + h;
    off += r.size;
    expect(++n <= data.size() / logfmt::record_header_bytes, "more records than could fit");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* input, std::size_t size) {
  // Exact-size, 8-aligned heap copy: ASan's redzone starts right after the last byte.
  auto buf = std::make_unique_for_overwrite<std::byte[]>(size);
  if (size != 0) std::memcpy(buf.get(), input, size);
  const std::span<const std::byte> data{buf.get(), size};

  const auto hdr = logfmt::decode_segment_header(data);
  if (hdr) expect(size >= logfmt::segment_header_bytes && hdr->base_seq != 0, "accepted a bad segment header");
  walk_records(data, hdr ? logfmt::segment_header_bytes : 0);
  for (std::size_t off = 8; off < size && off <= 64; off += 8) walk_records(data, off);

  if (auto idx = logfmt::decode_index(data)) {
    const auto again = logfmt::encode_index(*idx);
    expect(again.size() == size && std::memcmp(again.data(), data.data(), size) == 0,
           "an accepted index does not re-encode to the same bytes");
  }

  if (auto d = rill::decode_dead_letter(data)) {
    expect(inside(data, d->envelope), "dead-letter envelope outside the body");
    expect(inside(data, std::as_bytes(std::span(d->reason.data(), d->reason.size()))),
           "dead-letter reason outside the body");
    expect(d->reason.empty() || d->envelope.empty() ||
               d->envelope.data() >= reinterpret_cast<const std::byte*>(d->reason.data() + d->reason.size()),
           "dead-letter reason and envelope overlap");
  }
  return 0;
}
