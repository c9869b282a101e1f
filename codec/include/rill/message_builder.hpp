// MessageBuilder: builds a user's payload and its envelope in one buffer, in one pass.
#pragma once

#include <cstddef>
#include <span>

#include <flatbuffers/flatbuffers.h>

#include "rill/codec.hpp"

namespace rill {

/// Bytes of a header-less envelope before its topic string (root, identifier, vtable, table).
inline constexpr std::size_t plain_head_bytes = 64;

/// Writes a header-less envelope's head at `at` (8-aligned): `head_bytes` bytes (the 64
/// fixed ones, the topic string, zero padding), for a payload vector whose length prefix
/// lies `payload_at` bytes after `at`. Used where the payload is already in place.
void write_envelope_head(std::byte* at, std::size_t head_bytes, std::size_t payload_at, const EnvelopeFields& fields);

/// Holds one reusable FlatBufferBuilder. The user builds the payload table into
/// `fbb()`, then `finish()` turns those bytes into the envelope's payload vector in
/// place (no second buffer, no copy) and writes the envelope in front of it.
///
/// Not thread-safe: one builder per publishing thread (a Publisher owns one).
class MessageBuilder {
 public:
  explicit MessageBuilder(std::size_t initial_bytes = 1024) : m_fbb(initial_bytes) {}
  /// Builds in memory from `allocator` (a publisher's loan): the buffer is `initial_bytes`
  /// to start with and grows through the allocator.
  MessageBuilder(flatbuffers::Allocator* allocator, std::size_t initial_bytes)
      : m_fbb(initial_bytes, allocator, false, envelope_alignment) {}

  /// The builder to create the payload in. Call reset() before starting a new message.
  [[nodiscard]] flatbuffers::FlatBufferBuilder& fbb() noexcept { return m_fbb; }

  /// Clears the builder for the next message; keeps its memory.
  void reset() noexcept { m_fbb.Clear(); }

  /// Finishes the payload rooted at `root` (built in fbb()) and wraps it in an envelope.
  /// Returns the finished envelope bytes, valid until the next reset().
  template <class T>
  std::span<const std::byte> finish(flatbuffers::Offset<T> root, const EnvelopeFields& fields) {
    return finish_nested(root.o, fields);
  }

  /// Finishes the payload whose root table is at offset `root` (what finish() does).
  std::span<const std::byte> finish_nested(flatbuffers::uoffset_t root, const EnvelopeFields& fields);
  /// Wraps a payload vector already created in fbb() (e.g. CreateUninitializedVector) in an envelope.
  std::span<const std::byte> finish_vector(flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> payload,
                                           const EnvelopeFields& fields) {
    return finish_envelope(payload, fields);
  }

  /// Wraps raw payload bytes in an envelope (the builder must be empty: call reset()).
  std::span<const std::byte> finish_raw(std::span<const std::byte> payload, const EnvelopeFields& fields);

  /// Finished bytes of the last finish()/finish_raw().
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept;

  /// Hands the finished buffer over (for zero-copy sends of large messages); the
  /// builder allocates fresh memory for the next message.
  [[nodiscard]] flatbuffers::DetachedBuffer release() { return m_fbb.Release(); }

 private:
  // Exposes the builder's alignment so a nested finish aligns exactly like Finish().
  class Builder : public flatbuffers::FlatBufferBuilder {
   public:
    using flatbuffers::FlatBufferBuilder::FlatBufferBuilder;
    [[nodiscard]] std::size_t min_alignment() const noexcept { return minalign_; }
    /// Writes the envelope table without headers straight into the buffer (see codec.cpp).
    void write_plain_envelope(flatbuffers::uoffset_t payload, const EnvelopeFields& fields);
  };

  std::span<const std::byte> finish_envelope(flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> payload,
                                             const EnvelopeFields& fields);

  Builder m_fbb;
};

}  // namespace rill
