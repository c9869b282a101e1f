// Sample: a received message kept past its handler, still in the transport's buffer.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include "rill/message.hpp"

namespace rill {

namespace detail {
class SubscriberCore;
}

/// Owns one received message without copying it (on shm: the chunk in the segment,
/// which is not reused until every Sample of it is gone). Move-only; may be moved to
/// and released on another thread. Must not outlive the process's use of the transport
/// only in the sense that its memory stays mapped until it is destroyed.
class Sample {
 public:
  Sample(Sample&& other) noexcept;
  Sample& operator=(Sample&& other) noexcept;
  Sample(const Sample&) = delete;
  Sample& operator=(const Sample&) = delete;
  ~Sample();

  /// The message, read in place (verified when it was taken).
  [[nodiscard]] MessageView view() const noexcept;
  /// The whole envelope as it arrived.
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept;

 private:
  friend class detail::SubscriberCore;
  Sample() noexcept = default;
  void reset() noexcept;

  alignas(16) unsigned char m_frame[112];  // a detail::Frame, placement-constructed
  bool m_has_frame = false;
  std::unique_ptr<std::byte[]> m_copy;  // realigned bytes when the transport's were unaligned
  std::size_t m_copy_size = 0;
};

}  // namespace rill
