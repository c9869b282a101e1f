// The on-disk formats of the log: segment header, record, index file (PROTOCOL.md, "Persistent log").
// Everything is little-endian; records start 8-byte aligned so envelopes can be read in place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "rill/error.hpp"

namespace rill::detail::logfmt {

inline constexpr std::size_t segment_header_bytes = 48;
inline constexpr std::size_t record_header_bytes = 32;
inline constexpr std::size_t index_header_bytes = 64;
inline constexpr std::size_t index_entry_bytes = 24;
inline constexpr std::uint32_t format_version = 1;
inline constexpr char segment_magic[8] = {'R', 'I', 'L', 'L', 'S', 'E', 'G', '1'};
inline constexpr char index_magic[8] = {'R', 'I', 'L', 'L', 'I', 'D', 'X', '1'};

/// Bytes a record with a body of `body` bytes takes on disk (header + body + zero padding to 8).
[[nodiscard]] constexpr std::size_t record_size(std::size_t body) noexcept {
  return record_header_bytes + ((body + 7) & ~std::size_t{7});
}

/// The fields of a segment's 48-byte header.
struct SegmentHeader {
  std::uint64_t publisher_id = 0;
  std::uint64_t base_seq = 0;  ///< sequence of the segment's first record (or of the next append)
  std::int64_t created_ns = 0;
};

void encode_segment_header(std::span<std::byte, segment_header_bytes> out, const SegmentHeader& h) noexcept;
/// Checks magic, version and CRC; the detail says which failed.
[[nodiscard]] Result<SegmentHeader> decode_segment_header(std::span<const std::byte> in);

/// One record as stored: the fields plus where it lies in its segment.
struct RecordView {
  std::uint64_t sequence = 0;
  std::uint64_t publisher_id = 0;
  std::int64_t timestamp_ns = 0;
  std::span<const std::byte> body;  ///< the envelope, in place, 8-byte aligned relative to the segment
  std::size_t offset = 0;           ///< of the record header in the segment
  std::size_t size = 0;             ///< whole record with padding
};

/// Writes a whole record (header, body, zero padding, CRC) into `out` (record_size(body) bytes).
void encode_record(std::byte* out, std::uint64_t seq, std::uint64_t publisher_id, std::int64_t ts_ns,
                   std::span<const std::byte> body) noexcept;
/// The same without the CRC: the log's appenders leave it to the writer thread, which
/// seals a whole batch before writing it (seal_records), off the publishing thread.
void encode_record_unsealed(std::byte* out, std::uint64_t seq, std::uint64_t publisher_id, std::int64_t ts_ns,
                            std::span<const std::byte> body) noexcept;
/// Sets the CRC of every record in `records` (whole records back to back, as encoded).
void seal_records(std::span<std::byte> records) noexcept;

enum class RecordCheck {
  ok,
  partial,   ///< the header or the body runs past the end of the data
  too_long,  ///< the length field exceeds the limit
  bad_crc,   ///< bytes changed since they were written (or never were written)
};

/// Validates the record at `data[offset]` (offset must be 8-aligned) and fills `out` when ok.
/// Reads nothing outside `data`; never trusts a field before the CRC covers it.
[[nodiscard]] RecordCheck check_record(std::span<const std::byte> data, std::size_t offset, std::size_t max_body,
                                       RecordView& out) noexcept;
[[nodiscard]] const char* to_string(RecordCheck c) noexcept;

/// One sparse-index entry: the first record at or after each `index_interval` bytes.
struct IndexEntry {
  std::uint64_t sequence = 0;
  std::int64_t max_ts_before = 0;  ///< largest timestamp of the segment's records before this one
  std::uint64_t offset = 0;
};

/// A segment's index file: the checkpoint (everything below end_offset was synced and valid) and entries.
struct IndexFile {
  std::uint64_t base_seq = 0;
  std::uint64_t end_offset = 0;
  std::uint64_t last_seq = 0;  ///< base_seq - 1 when the segment has no record
  std::uint64_t records = 0;
  std::int64_t first_ts = 0;
  std::int64_t max_ts = 0;
  std::vector<IndexEntry> entries;
};

[[nodiscard]] std::vector<std::byte> encode_index(const IndexFile& idx);
[[nodiscard]] Result<IndexFile> decode_index(std::span<const std::byte> in);

/// "00000000000000000001" + suffix: segment and index files are named by their base sequence.
[[nodiscard]] std::string segment_name(std::uint64_t base_seq, const char* suffix);

}  // namespace rill::detail::logfmt
