// Reference-counted receive buffers: one datagram (or one reassembled message) each.
// A Frame holds a reference and the span of one envelope inside, so the envelopes of
// a batched datagram reach the handler without a copy. Single-threaded, like the
// subscriber that owns the pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

#include "policies/frame.hpp"

namespace rill::detail::udp {

class BufferPool;

/// Header of a buffer; the bytes follow it, 16-byte aligned.
struct alignas(16) Buffer {
  BufferPool* pool = nullptr;  ///< nullptr: a one-off (reassembly) buffer, freed on last release
  std::uint32_t refs = 1;
  std::uint32_t capacity = 0;

  [[nodiscard]] std::byte* data() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
  [[nodiscard]] const std::byte* data() const noexcept { return reinterpret_cast<const std::byte*>(this + 1); }
};

/// Allocates a buffer of `capacity` bytes outside any pool; nullptr when out of memory.
inline Buffer* allocate_buffer(std::size_t capacity, BufferPool* pool = nullptr) noexcept {
  void* p = ::operator new (sizeof(Buffer) + capacity, std::align_val_t{16}, std::nothrow);
  if (p == nullptr) return nullptr;
  auto* b = new (p) Buffer;
  b->pool = pool;
  b->capacity = static_cast<std::uint32_t>(capacity);
  return b;
}

inline void free_buffer(Buffer* b) noexcept {
  ::operator delete (b, std::align_val_t{16});
}

/// Datagram-sized buffers reused without allocation in steady state. It outlives its
/// owner while frames still hold its buffers (the last release deletes it).
class BufferPool {
 public:
  explicit BufferPool(std::size_t buffer_bytes) noexcept : m_bytes(buffer_bytes) {}
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  /// A buffer with one reference; nullptr when out of memory.
  Buffer* acquire() noexcept {
    Buffer* b = nullptr;
    if (!m_free.empty()) {
      b = m_free.back();
      m_free.pop_back();
      b->refs = 1;
    } else {
      b = allocate_buffer(m_bytes, this);
      if (b == nullptr) return nullptr;
    }
    ++m_outstanding;
    return b;
  }

  /// Called by the owner instead of delete.
  void retire() noexcept {
    m_owner_alive = false;
    for (auto* b : m_free) free_buffer(b);
    m_free.clear();
    if (m_outstanding == 0) delete this;
  }

  [[nodiscard]] std::size_t buffer_bytes() const noexcept { return m_bytes; }

 private:
  friend void release(Buffer* b) noexcept;
  ~BufferPool() = default;

  void give_back(Buffer* b) noexcept {
    --m_outstanding;
    if (m_owner_alive && m_free.size() < max_free) {
      m_free.push_back(b);  // capacity reserved below: no allocation here
      return;
    }
    free_buffer(b);
    if (!m_owner_alive && m_outstanding == 0) delete this;
  }

 public:
  static constexpr std::size_t max_free = 4096;
  void reserve() { m_free.reserve(max_free); }

 private:
  std::size_t m_bytes;
  std::vector<Buffer*> m_free;
  std::size_t m_outstanding = 0;
  bool m_owner_alive = true;
};

inline void retain(Buffer* b) noexcept {
  ++b->refs;
}

/// Drops one reference; the last one returns the buffer to its pool (or frees it).
inline void release(Buffer* b) noexcept {
  if (--b->refs != 0) return;
  if (b->pool != nullptr) {
    b->pool->give_back(b);
  } else {
    free_buffer(b);
  }
}

/// What a Frame's storage holds for udp: a buffer reference and one envelope's span.
struct HeldSpan {
  Buffer* buffer;
  std::uint32_t offset;
  std::uint32_t length;
};
static_assert(sizeof(HeldSpan) <= Frame::storage_size);

inline constexpr FrameOps buffer_frame_ops{
    .release = [](void* s) noexcept { release(static_cast<HeldSpan*>(s)->buffer); },
    .move = nullptr,  // a pointer and two integers: relocated with memcpy
    .bytes =
        [](const void* s) noexcept {
          const auto* h = static_cast<const HeldSpan*>(s);
          return std::span<const std::byte>(h->buffer->data() + h->offset, h->length);
        },
};

/// A Frame taking a new reference to `b` for bytes [offset, offset + length).
inline Frame make_frame(Buffer* b, std::size_t offset, std::size_t length, std::uint32_t source) noexcept {
  Frame f(&buffer_frame_ops, source);
  retain(b);
  new (f.storage()) HeldSpan{b, static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(length)};
  return f;
}

}  // namespace rill::detail::udp
