// CRC-32C (Castagnoli), the checksum of every log record, index and ack file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace rill::detail {

/// Extends `crc` (0 to start) over `data`; crc32c(crc32c(0, a), b) == crc32c(0, a + b).
/// Uses the SSE4.2 crc32 instruction when the CPU has it, a slicing-by-8 table otherwise;
/// both give the same values (RFC 3720 polynomial 0x1EDC6F41, reflected, ~0 in and out).
[[nodiscard]] std::uint32_t crc32c(std::uint32_t crc, std::span<const std::byte> data) noexcept;

/// The portable table implementation, exposed so tests can compare it with the hardware one.
[[nodiscard]] std::uint32_t crc32c_portable(std::uint32_t crc, std::span<const std::byte> data) noexcept;

}  // namespace rill::detail
