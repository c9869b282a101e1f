// Frame: a move-only owner of one received buffer, whatever transport filled it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <utility>

namespace rill::detail {

/// How a transport releases and moves the storage behind a Frame.
struct FrameOps {
  void (*release)(void* storage) noexcept;
  /// dst is raw memory; src is left empty. nullptr: the handle is trivially
  /// relocatable (no pointers into itself), so moving it is a memcpy.
  void (*move)(void* dst, void* src) noexcept;
  std::span<const std::byte> (*bytes)(const void* storage) noexcept;
};

/// One received frame, held without copying (e.g. a zmq_msg_t inline). Queues of
/// frames move them; nothing is copied per message. Not thread-safe.
class Frame {
 public:
  static constexpr std::size_t storage_size = 80;

  Frame() noexcept = default;
  Frame(const FrameOps* ops, std::uint32_t source) noexcept : m_ops(ops), m_source(source) {}
  Frame(Frame&& other) noexcept { take(other); }
  Frame& operator=(Frame&& other) noexcept {
    if (this != &other) {
      reset();
      take(other);
    }
    return *this;
  }
  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;
  ~Frame() { reset(); }

  /// Raw storage for the transport to construct its handle in (see FrameOps).
  [[nodiscard]] void* storage() noexcept { return m_storage; }
  [[nodiscard]] bool empty() const noexcept { return m_ops == nullptr; }
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept {
    return m_ops == nullptr ? std::span<const std::byte>{} : m_ops->bytes(m_storage);
  }
  /// Which connection of the subscriber it came from (for credits and gap baselines).
  [[nodiscard]] std::uint32_t source() const noexcept { return m_source; }

  void reset() noexcept {
    if (m_ops != nullptr) m_ops->release(m_storage);
    m_ops = nullptr;
  }

 private:
  void take(Frame& other) noexcept {
    m_ops = other.m_ops;
    m_source = other.m_source;
    if (m_ops != nullptr) {
      if (m_ops->move != nullptr) {
        m_ops->move(m_storage, other.m_storage);
      } else {
        std::memcpy(m_storage, other.m_storage, storage_size);
      }
    }
    other.m_ops = nullptr;
  }

  alignas(16) unsigned char m_storage[storage_size];
  const FrameOps* m_ops = nullptr;
  std::uint32_t m_source = 0;
};

}  // namespace rill::detail
