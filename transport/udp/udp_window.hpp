// The publisher's retransmit window: the last datagrams sent, kept for NAKs, bounded
// by bytes and by count. Also the queue sendmmsg sends from (the unsent tail).
// The datagrams live back to back in one circular byte buffer of exactly max_bytes
// (written sequentially, so memory stays bounded and warm); records index it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace rill::detail::udp {

/// Not thread-safe: the publishing thread only.
class RetransmitWindow {
 public:
  using clock = std::chrono::steady_clock;

  /// One datagram: DATA with `count` messages from first_seq, or fragment
  /// `frag_index` of message first_seq (count 1).
  struct Record {
    std::uint64_t first_seq = 0;
    std::uint32_t count = 0;
    std::uint32_t frag_index = 0;
    bool fragment = false;
    bool first_fragment = false;
    std::byte* data = nullptr;  // inside the window's byte buffer
    std::size_t offset = 0;
    std::size_t length = 0;
    clock::time_point last_resent{};

    [[nodiscard]] std::span<std::byte> bytes() noexcept { return {data, length}; }
  };

  /// Keeps at most `max_bytes` of datagrams and `max_records` of them.
  RetransmitWindow(std::size_t max_bytes, std::size_t max_records);

  /// Makes room (evicting the oldest records) and opens a new record at the back with
  /// `capacity` (≤ max_bytes) writable bytes. Finish it with commit(); until then it is
  /// not visible to find().
  std::span<std::byte> open(std::size_t capacity);
  /// Finishes the open record: its length and what it carries.
  void commit(std::size_t length, std::uint64_t first_seq, std::uint32_t count, bool fragment,
              std::uint32_t frag_index);

  /// The oldest message sequence the window can still retransmit whole (== next_seq when empty).
  [[nodiscard]] std::uint64_t oldest_seq(std::uint64_t next_seq) const noexcept;

  /// Calls visit(Record&) for every record holding messages first..last (and, for a
  /// fragmented message asked alone, only fragments frag_first..frag_last).
  template <class Visit>
  void find(std::uint64_t first, std::uint64_t last, std::uint32_t frag_first, std::uint32_t frag_last, Visit&& visit) {
    // Records are in sequence order: binary search the first that ends at or after `first`.
    std::size_t lo = 0, hi = m_size;
    while (lo < hi) {
      const auto mid = (lo + hi) / 2;
      const auto& r = at(mid);
      if (r.first_seq + r.count - 1 < first) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    for (std::size_t i = lo; i < m_size; ++i) {
      auto& r = at(i);
      if (r.first_seq > last) break;
      if (r.fragment && first == last && (r.frag_index < frag_first || r.frag_index > frag_last)) continue;
      visit(r);
    }
  }

  [[nodiscard]] std::size_t size() const noexcept { return m_size; }
  [[nodiscard]] std::size_t bytes() const noexcept { return m_bytes; }
  /// Record i, oldest first (0 .. size()-1).
  [[nodiscard]] Record& at(std::size_t i) noexcept { return m_ring[(m_head + i) % m_ring.size()]; }
  [[nodiscard]] const Record& at(std::size_t i) const noexcept { return m_ring[(m_head + i) % m_ring.size()]; }

 private:
  void evict_front();

  std::vector<Record> m_ring;
  std::unique_ptr<std::byte[]> m_buf;
  std::size_t m_buf_size;
  std::size_t m_write = 0;  // where the open record starts
  std::size_t m_head = 0;
  std::size_t m_size = 0;  // committed records
  std::size_t m_bytes = 0;
  std::size_t m_max_bytes;
  bool m_open = false;
};

}  // namespace rill::detail::udp
