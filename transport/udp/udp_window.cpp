#include "udp_window.hpp"

#include <algorithm>

namespace rill::detail::udp {

RetransmitWindow::RetransmitWindow(std::size_t max_bytes, std::size_t max_records)
    : m_ring(std::max<std::size_t>(max_records, 2) + 1),
      // Pages are only touched as datagrams are written: a large window costs address
      // space until it has been filled once.
      m_buf(std::make_unique_for_overwrite<std::byte[]>(max_bytes)),
      m_buf_size(max_bytes),
      m_max_bytes(max_bytes) {}

void RetransmitWindow::evict_front() {
  m_bytes -= m_ring[m_head].length;
  m_head = (m_head + 1) % m_ring.size();
  --m_size;
}

std::span<std::byte> RetransmitWindow::open(std::size_t capacity) {
  capacity = std::min(capacity, m_buf_size);
  // One record slot stays free for the open record.
  while (m_size > 0 && m_size + 1 >= m_ring.size()) evict_front();
  // The bytes: [m_write, m_write + capacity) must not hold a live record. Live records
  // run from the oldest one's offset forward (circularly) to m_write.
  for (;;) {
    if (m_size == 0) {
      if (m_write + capacity > m_buf_size) m_write = 0;
      break;
    }
    const auto oldest = m_ring[m_head].offset;
    if (oldest >= m_write) {
      // Free space is the gap up to the oldest record (none when the buffer is full).
      if (oldest - m_write >= capacity && !(oldest == m_write)) break;
      evict_front();
    } else if (m_buf_size - m_write >= capacity) {
      break;  // room at the end
    } else {
      m_write = 0;  // wrap; the tail end stays unused this round
    }
  }
  auto& r = m_ring[(m_head + m_size) % m_ring.size()];
  r.offset = m_write;
  r.data = m_buf.get() + m_write;
  r.length = 0;
  m_open = true;
  return {r.data, capacity};
}

void RetransmitWindow::commit(std::size_t length, std::uint64_t first_seq, std::uint32_t count, bool fragment,
                              std::uint32_t frag_index) {
  auto& r = m_ring[(m_head + m_size) % m_ring.size()];
  r.length = length;
  m_write = r.offset + length;
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
