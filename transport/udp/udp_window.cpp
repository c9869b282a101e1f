#include "udp_window.hpp"

#include <algorithm>

namespace rill::detail::udp {

RetransmitWindow::RetransmitWindow(std::size_t max_bytes, std::size_t max_records)
    : m_ring(std::max<std::size_t>(max_records, 2) + 1), m_max_bytes(max_bytes) {}

void RetransmitWindow::evict_front() {
  m_bytes -= m_ring[m_head].length;
  m_head = (m_head + 1) % m_ring.size();
  --m_size;
}

std::span<std::byte> RetransmitWindow::open(std::size_t capacity) {
  // One slot stays free for the open record.
  while (m_size > 0 && (m_size + 1 >= m_ring.size() || m_bytes + capacity > m_max_bytes)) evict_front();
  auto& r = m_ring[(m_head + m_size) % m_ring.size()];
  if (r.capacity < capacity) {
    r.data = std::make_unique_for_overwrite<std::byte[]>(capacity);
    r.capacity = capacity;
  }
  r.length = 0;
  m_open = true;
  return {r.data.get(), capacity};
}

void RetransmitWindow::commit(std::size_t length, std::uint64_t first_seq, std::uint32_t count, bool fragment,
                              std::uint32_t frag_index) {
  auto& r = m_ring[(m_head + m_size) % m_ring.size()];
  r.length = length;
  r.first_seq = first_seq;
  r.count = count;
  r.fragment = fragment;
  r.frag_index = frag_index;
  r.first_fragment = fragment && frag_index == 0;
  r.last_resent = {};
  m_bytes += length;
  ++m_size;
  m_open = false;
}

std::uint64_t RetransmitWindow::oldest_seq(std::uint64_t next_seq) const noexcept {
  if (m_size == 0) return next_seq;
  const auto& r = at(0);
  // A message whose first fragments were evicted cannot be completed any more.
  return std::min(next_seq, r.fragment && !r.first_fragment ? r.first_seq + 1 : r.first_seq);
}

}  // namespace rill::detail::udp
