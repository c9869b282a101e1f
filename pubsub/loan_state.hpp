// LoanState: the allocator behind a Loan's FlatBufferBuilder (internal).
#pragma once

#include <optional>

#include "transport/transport.hpp"
#include "rill/loan.hpp"
#include "rill/message_builder.hpp"

namespace rill::detail {

/// Hands a FlatBufferBuilder the loaned chunk as its buffer; growth takes a bigger
/// loan or, when the transport lends none, the heap. Heap-allocated once and reused
/// by its Publisher (the builder keeps a pointer to it). One thread.
struct LoanState final : flatbuffers::Allocator {
  PublisherTransport* transport = nullptr;
  LoanedChunk chunk{};
  bool have_chunk = false;   // `chunk` is lent to us
  bool chunk_given = false;  // ... and is the builder's buffer now
  bool consumed = false;     // ... and was handed to the transport to send
  LoanedChunk old{};         // the smaller chunk while the builder grows out of it
  bool have_old = false;
  bool raw_used = false;
  flatbuffers::uoffset_t raw_vector = 0;
  // A raw payload placed at the end of the chunk with no builder at all (the envelope's
  // head is written in front of it at publish): the cheapest way to send bytes.
  std::byte* direct_data = nullptr;
  std::size_t initial = 0;                // the builder's first buffer size, once one is needed
  std::size_t transport_topic_bytes = 0;  // the publisher's topic length (room for the head)
  bool heap_only = false;                 // never borrow from the transport (durable publishers)
  std::optional<MessageBuilder> builder;

  MessageBuilder& make_builder() {
    if (!builder) builder.emplace(this, initial);
    return *builder;
  }

  ~LoanState() override { clear(); }

  /// Gives back whatever is still lent and forgets the builder.
  void clear() noexcept {
    builder.reset();  // deallocates its buffer through us
    if (have_chunk && !consumed) transport->unloan(chunk.handle);
    if (have_old) transport->unloan(old.handle);
    have_chunk = chunk_given = consumed = have_old = raw_used = false;
    raw_vector = 0;
    direct_data = nullptr;
  }

  [[nodiscard]] bool holds(const LoanedChunk& c, const void* p) const noexcept {
    const auto* b = static_cast<const std::byte*>(p);
    return b >= c.data && b < c.data + c.capacity;
  }

  std::uint8_t* allocate(std::size_t size) override {
    if (have_chunk && !chunk_given && size <= chunk.capacity) {
      chunk_given = true;
      return reinterpret_cast<std::uint8_t*>(chunk.data + chunk.capacity - size);  // end stays 64-aligned
    }
    if (heap_only) return static_cast<std::uint8_t*>(::operator new (size, std::align_val_t{64}));
    if (auto bigger = transport->loan(size)) {
      if (have_chunk) {
        old = chunk;
        have_old = true;
      }
      chunk = *bigger;
      have_chunk = chunk_given = true;
      return reinterpret_cast<std::uint8_t*>(chunk.data + chunk.capacity - size);
    }
    return static_cast<std::uint8_t*>(::operator new (size, std::align_val_t{64}));
  }

  void deallocate(std::uint8_t* p, std::size_t) override {
    if (have_old && holds(old, p)) {
      transport->unloan(old.handle);
      have_old = false;
    } else if (have_chunk && holds(chunk, p)) {
      if (!consumed) transport->unloan(chunk.handle);
      have_chunk = chunk_given = false;
    } else {
      ::operator delete (p, std::align_val_t{64});
    }
  }
};

}  // namespace rill::detail
