#include "format.hpp"

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "crc32c.hpp"

namespace rill::detail::logfmt {

namespace {

template <class T>
void put(std::byte* p, T v) noexcept {
  std::memcpy(p, &v, sizeof v);
}
template <class T>
T get(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

void encode_segment_header(std::span<std::byte, segment_header_bytes> out, const SegmentHeader& h) noexcept {
  std::byte* p = out.data();
  std::memset(p, 0, segment_header_bytes);
  std::memcpy(p, segment_magic, 8);
  put<std::uint32_t>(p + 8, format_version);
  put<std::uint64_t>(p + 16, h.publisher_id);
  put<std::uint64_t>(p + 24, h.base_seq);
  put<std::int64_t>(p + 32, h.created_ns);
  put<std::uint32_t>(p + 44, crc32c(0, {p, 44}));
}

Result<SegmentHeader> decode_segment_header(std::span<const std::byte> in) {
  if (in.size() < segment_header_bytes) return fail(Errc::corrupt, "segment header is short");
  const std::byte* p = in.data();
  if (std::memcmp(p, segment_magic, 8) != 0) return fail(Errc::corrupt, "not a rill log segment (bad magic)");
  if (get<std::uint32_t>(p + 44) != crc32c(0, {p, 44})) return fail(Errc::corrupt, "segment header fails its crc");
  if (get<std::uint32_t>(p + 8) != format_version) return fail(Errc::incompatible, "unknown segment format version");
  SegmentHeader h{.publisher_id = get<std::uint64_t>(p + 16),
                  .base_seq = get<std::uint64_t>(p + 24),
                  .created_ns = get<std::int64_t>(p + 32)};
  if (h.base_seq == 0) return fail(Errc::corrupt, "segment header has base sequence 0");
  return h;
}

void encode_record_unsealed(std::byte* out, std::uint64_t seq, std::uint64_t publisher_id, std::int64_t ts_ns,
                            std::span<const std::byte> body) noexcept {
  const std::size_t size = record_size(body.size());
  put<std::uint32_t>(out, static_cast<std::uint32_t>(body.size()));
  put<std::uint64_t>(out + 8, seq);
  put<std::uint64_t>(out + 16, publisher_id);
  put<std::int64_t>(out + 24, ts_ns);
  if (!body.empty()) std::memcpy(out + record_header_bytes, body.data(), body.size());
  std::memset(out + record_header_bytes + body.size(), 0, size - record_header_bytes - body.size());
}

namespace {
// The CRC covers the length and everything after itself, padding included: no byte of a
// record escapes it (a length changed within the same padding would otherwise pass).
void seal(std::byte* out, std::size_t size) noexcept {
  put<std::uint32_t>(out + 4, crc32c(crc32c(0, {out, 4}), {out + 8, size - 8}));
}
}  // namespace

void encode_record(std::byte* out, std::uint64_t seq, std::uint64_t publisher_id, std::int64_t ts_ns,
                   std::span<const std::byte> body) noexcept {
  encode_record_unsealed(out, seq, publisher_id, ts_ns, body);
  seal(out, record_size(body.size()));
}

void seal_records(std::span<std::byte> records) noexcept {
  for (std::size_t off = 0; off + record_header_bytes <= records.size();) {
    std::byte* p = records.data() + off;
    const std::size_t size = record_size(get<std::uint32_t>(p));
    seal(p, size);
    off += size;
  }
}

RecordCheck check_record(std::span<const std::byte> data, std::size_t offset, std::size_t max_body,
                         RecordView& out) noexcept {
  if (offset > data.size() || data.size() - offset < record_header_bytes) return RecordCheck::partial;
  const std::byte* p = data.data() + offset;
  const std::uint32_t len = get<std::uint32_t>(p);
  if (len > max_body) return RecordCheck::too_long;
  const std::size_t size = record_size(len);
  if (data.size() - offset < size) return RecordCheck::partial;
  if (get<std::uint32_t>(p + 4) != crc32c(crc32c(0, {p, 4}), {p + 8, size - 8})) return RecordCheck::bad_crc;
  out.sequence = get<std::uint64_t>(p + 8);
  out.publisher_id = get<std::uint64_t>(p + 16);
  out.timestamp_ns = get<std::int64_t>(p + 24);
  out.body = {p + record_header_bytes, len};
  out.offset = offset;
  out.size = size;
  return RecordCheck::ok;
}

const char* to_string(RecordCheck c) noexcept {
  switch (c) {
    case RecordCheck::ok:
      return "ok";
    case RecordCheck::partial:
      return "record runs past the end of the file";
    case RecordCheck::too_long:
      return "record length exceeds the limit";
    case RecordCheck::bad_crc:
      return "record fails its crc";
  }
  return "?";
}

std::vector<std::byte> encode_index(const IndexFile& idx) {
  std::vector<std::byte> out(index_header_bytes + idx.entries.size() * index_entry_bytes);
  std::byte* p = out.data();
  std::memcpy(p, index_magic, 8);
  put<std::uint32_t>(p + 8, format_version);
  put<std::uint32_t>(p + 12, static_cast<std::uint32_t>(idx.entries.size()));
  put<std::uint64_t>(p + 16, idx.base_seq);
  put<std::uint64_t>(p + 24, idx.end_offset);
  put<std::uint64_t>(p + 32, idx.last_seq);
  put<std::uint64_t>(p + 40, idx.records);
  put<std::int64_t>(p + 48, idx.first_ts);
  put<std::int64_t>(p + 56, idx.max_ts);
  std::byte* e = p + index_header_bytes;
  for (const auto& ent : idx.entries) {
    put<std::uint64_t>(e, ent.sequence);
    put<std::int64_t>(e + 8, ent.max_ts_before);
    put<std::uint64_t>(e + 16, ent.offset);
    e += index_entry_bytes;
  }
  // The CRC trails the file so a short write is a mismatch, not a shorter valid index.
  const std::uint32_t crc = crc32c(0, out);
  out.resize(out.size() + 8);
  put<std::uint32_t>(out.data() + out.size() - 8, crc);
  return out;
}

Result<IndexFile> decode_index(std::span<const std::byte> in) {
  if (in.size() < index_header_bytes + 8) return fail(Errc::corrupt, "index file is short");
  const std::byte* p = in.data();
  if (std::memcmp(p, index_magic, 8) != 0) return fail(Errc::corrupt, "index file has a bad magic");
  const auto count = get<std::uint32_t>(p + 12);
  if (in.size() != index_header_bytes + std::size_t{count} * index_entry_bytes + 8) {
    return fail(Errc::corrupt, "index file size does not match its entry count");
  }
  if (get<std::uint32_t>(p + in.size() - 8) != crc32c(0, in.first(in.size() - 8))) {
    return fail(Errc::corrupt, "index file fails its crc");
  }
  // The last four bytes are outside the CRC: they must be the zeros that were written.
  if (get<std::uint32_t>(p + in.size() - 4) != 0) return fail(Errc::corrupt, "index file trailer is not zero");
  if (get<std::uint32_t>(p + 8) != format_version) return fail(Errc::incompatible, "unknown index format version");
  IndexFile idx{.base_seq = get<std::uint64_t>(p + 16),
                .end_offset = get<std::uint64_t>(p + 24),
                .last_seq = get<std::uint64_t>(p + 32),
                .records = get<std::uint64_t>(p + 40),
                .first_ts = get<std::int64_t>(p + 48),
                .max_ts = get<std::int64_t>(p + 56),
                .entries = {}};
  idx.entries.reserve(count);
  const std::byte* e = p + index_header_bytes;
  for (std::uint32_t i = 0; i < count; ++i, e += index_entry_bytes) {
    idx.entries.push_back({get<std::uint64_t>(e), get<std::int64_t>(e + 8), get<std::uint64_t>(e + 16)});
  }
  return idx;
}

std::string segment_name(std::uint64_t base_seq, const char* suffix) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%020" PRIu64 "%s", base_seq, suffix);
  return buf;
}

}  // namespace rill::detail::logfmt
