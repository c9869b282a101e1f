#include "inbound_queue.hpp"

#include <algorithm>
#include <bit>

namespace rill::detail {

InboundQueue::InboundQueue(Policy policy) : m_policy(policy) {
  // Count-bounded queues never grow, so their steady state allocates nothing.
  const std::size_t slots = policy.kind == PolicyKind::buffer ? 64 : std::max<std::size_t>(policy.capacity, 1);
  m_ring.resize(std::bit_ceil(slots));
}

void InboundQueue::grow() {
  std::vector<Frame> bigger(m_ring.size() * 2);
  for (std::size_t i = 0; i < m_count; ++i) {
    bigger[i] = std::move(m_ring[(m_head + i) & (m_ring.size() - 1)]);
  }
  m_ring.swap(bigger);
  m_head = 0;
}

void InboundQueue::raise_capacity(std::size_t capacity) {
  if (m_policy.kind == PolicyKind::buffer || capacity <= m_policy.capacity) return;
  m_policy.capacity = capacity;
  while (m_ring.size() < capacity) grow();
}

void InboundQueue::evict_oldest() noexcept {
  Frame& oldest = m_ring[m_head];
  m_bytes -= oldest.bytes().size();
  oldest.reset();
  m_head = (m_head + 1) & (m_ring.size() - 1);
  --m_count;
  ++m_discarded;
}

PushOutcome InboundQueue::push(Frame&& frame) {
  const std::size_t size = frame.bytes().size();
  bool evicted = false;
  switch (m_policy.kind) {
    case PolicyKind::drop_oldest:
      if (m_count == m_policy.capacity) {
        evict_oldest();
        evicted = true;
      }
      break;
    case PolicyKind::drop_newest:
    case PolicyKind::backpressure:
      // A backpressure publisher never sends past the window; if one does, the
      // frame is refused rather than letting the queue grow without bound.
      if (m_count == m_policy.capacity) {
        frame.reset();
        ++m_discarded;
        return PushOutcome::rejected;
      }
      break;
    case PolicyKind::buffer:
      if (m_bytes + size > m_policy.capacity) {
        m_overflowed = true;
        while (m_count > 0 && m_bytes + size > m_policy.capacity) {
          evict_oldest();
          evicted = true;
        }
        if (size > m_policy.capacity) {  // alone it is larger than the whole buffer
          frame.reset();
          ++m_discarded;
          return PushOutcome::rejected;
        }
      }
      if (m_count == m_ring.size()) grow();
      break;
  }
  m_ring[(m_head + m_count) & (m_ring.size() - 1)] = std::move(frame);
  ++m_count;
  m_bytes += size;
  m_high_water_bytes = std::max(m_high_water_bytes, m_bytes);
  return evicted ? PushOutcome::queued_evicted : PushOutcome::queued;
}

Frame InboundQueue::pop() noexcept {
  Frame out = std::move(m_ring[m_head]);
  m_head = (m_head + 1) & (m_ring.size() - 1);
  --m_count;
  m_bytes -= out.bytes().size();
  return out;
}

}  // namespace rill::detail
