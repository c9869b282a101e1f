// InboundQueue: the subscriber-side queue that applies a slow-consumer policy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "policies/frame.hpp"
#include "rill/policy.hpp"

namespace rill::detail {

/// What push() did with a frame.
enum class PushOutcome : std::uint8_t {
  queued,            ///< stored
  queued_evicted,    ///< stored; the oldest frame(s) were discarded to make room
  rejected,          ///< the new frame was discarded (drop_newest, or an over-window frame)
};

/// A ring of frames bounded by count (drop_*, backpressure) or bytes (buffer).
/// Memory for count-bounded policies is reserved up front; a buffer queue grows by
/// doubling until its byte limit holds. Single-threaded: owned by one Subscriber.
class InboundQueue {
 public:
  explicit InboundQueue(Policy policy);

  /// Applies the policy to `frame`. Frames discarded are counted in evicted().
  PushOutcome push(Frame&& frame);
  /// Removes the oldest frame; the queue must not be empty.
  Frame pop() noexcept;

  [[nodiscard]] bool empty() const noexcept { return m_count == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return m_count; }
  [[nodiscard]] std::size_t bytes() const noexcept { return m_bytes; }
  [[nodiscard]] std::size_t high_water_bytes() const noexcept { return m_high_water_bytes; }
  /// Frames discarded by the policy since construction.
  [[nodiscard]] std::uint64_t discarded() const noexcept { return m_discarded; }
  /// True once a buffer queue went past its byte limit (it then behaves as drop_oldest).
  [[nodiscard]] bool overflowed() const noexcept { return m_overflowed; }
  [[nodiscard]] const Policy& policy() const noexcept { return m_policy; }
  /// Backpressure whose publishers each have a window of their own (udp): the queue must
  /// hold every window at once, so it grows with the publishers (never shrinks).
  void raise_capacity(std::size_t capacity);

 private:
  void grow();
  void evict_oldest() noexcept;

  Policy m_policy;
  std::vector<Frame> m_ring;  // size is a power of two
  std::size_t m_head = 0;     // index of the oldest frame
  std::size_t m_count = 0;
  std::size_t m_bytes = 0;
  std::size_t m_high_water_bytes = 0;
  std::uint64_t m_discarded = 0;
  bool m_overflowed = false;
};

}  // namespace rill::detail
