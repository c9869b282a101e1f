// Envelope encoding and verification: the one place that knows the wire schema.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "rill/envelope_generated.h"
#include "rill/error.hpp"

namespace rill {

/// Bounds applied by the FlatBuffers verifier to everything that came from a socket.
struct VerifyLimits {
  std::size_t max_bytes = 64u << 20;  ///< whole envelope
  std::uint32_t max_depth = 8;        ///< envelope nesting (envelope -> headers -> header)
  std::uint32_t max_tables = 260;     ///< envelope + up to 256 headers
};

/// Bounds for verifying a user's payload table (its schema decides depth and table count).
struct PayloadLimits {
  std::uint32_t max_depth = 32;
  std::uint32_t max_tables = 100000;
};

/// One key/value header to attach at publish time.
struct HeaderKV {
  std::string_view key;
  std::string_view value;
};

/// The envelope fields a publisher stamps on each message.
struct EnvelopeFields {
  std::string_view topic;
  std::uint64_t publisher_id = 0;
  std::uint64_t sequence = 0;
  std::int64_t timestamp_ns = 0;
  std::span<const HeaderKV> headers;
};

/// Envelopes must start 8-byte aligned in memory before they are read in place.
inline constexpr std::size_t envelope_alignment = 8;

/// Runs the verifier over `bytes`; on success returns the envelope, read in place.
/// `bytes.data()` must be aligned to envelope_alignment (checked, reported as malformed).
[[nodiscard]] Result<const wire::Envelope*> verify_envelope(std::span<const std::byte> bytes,
                                                            const VerifyLimits& limits = {});

/// Verifies `payload` as a FlatBuffer whose root is T; nullptr when it is not one.
template <class T>
[[nodiscard]] const T* verify_payload(std::span<const std::byte> payload, const PayloadLimits& limits = {}) {
  if (payload.empty() || reinterpret_cast<std::uintptr_t>(payload.data()) % envelope_alignment != 0) {
    return nullptr;
  }
  flatbuffers::Verifier::Options opts;
  opts.max_depth = limits.max_depth;
  opts.max_tables = limits.max_tables;
  flatbuffers::Verifier v(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size(), opts);
  if (!v.VerifyBuffer<T>(nullptr)) return nullptr;
  return flatbuffers::GetRoot<T>(payload.data());
}

/// Nanoseconds since the Unix epoch (CLOCK_REALTIME), the envelope's timestamp.
[[nodiscard]] std::int64_t wall_clock_ns() noexcept;

}  // namespace rill
