// The receiving state for one remote publisher: reassembly of fragments with bounded
// memory, in-order delivery (reliable) or newest-first delivery (best effort), gap
// detection, NAK ranges and the positions reported in STATUS.
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "transport/transport.hpp"
#include "udp_buffer.hpp"
#include "udp_wire.hpp"

namespace rill::detail::udp {

/// What a stream counted; summed over streams for the close log line.
struct StreamCounters {
  std::uint64_t duplicates = 0;          ///< datagrams or fragments already had (or older than delivery)
  std::uint64_t beyond_window = 0;       ///< too far ahead of delivery to hold (NAKed again later)
  std::uint64_t unrecoverable = 0;       ///< messages given up: no longer retained by the publisher, or it vanished
  std::uint64_t incomplete = 0;          ///< fragmented messages dropped unfinished
  std::uint64_t naks_sent = 0;           ///< NAK datagrams sent
  std::uint64_t reassembly_refused = 0;  ///< fragments refused to keep reassembly memory bounded
};

/// Limits shared by every stream of a subscriber.
struct StreamLimits {
  bool reliable = true;
  std::size_t max_message = 64u << 20;
  std::size_t reassembly_bytes = 128u << 20;  ///< all partial messages of all streams together
  /// A durable subscription: what the publisher can still send it is what its history
  /// keeps, told by unicast; the group heartbeat's oldest (its retransmit window) is not
  /// a reason to give anything up.
  bool durable = false;
  /// A consumer group member's own stream: its sequences are the stream's, not the
  /// publisher's, so its BYE names no publisher sequence to count a tail gap against.
  bool group = false;
};

/// Not thread-safe: the subscriber's polling thread only.
class PublisherStream {
 public:
  using clock = std::chrono::steady_clock;
  /// Messages held out of order at most (ahead of the next one to deliver).
  static constexpr std::uint64_t ring_size = 16384;

  PublisherStream(std::uint64_t publisher_id, std::uint32_t source, const sockaddr_in& from, const StreamLimits& limits,
                  std::size_t& reassembly_in_use, StreamCounters& counters);
  ~PublisherStream();
  PublisherStream(const PublisherStream&) = delete;
  PublisherStream& operator=(const PublisherStream&) = delete;

  [[nodiscard]] std::uint64_t id() const noexcept { return m_id; }
  [[nodiscard]] std::uint32_t source() const noexcept { return m_source; }
  [[nodiscard]] const sockaddr_in& address() const noexcept { return m_from; }
  [[nodiscard]] bool welcomed() const noexcept { return m_welcomed; }
  [[nodiscard]] bool bye_seen() const noexcept { return m_bye; }
  [[nodiscard]] bool finished() const noexcept { return m_bye_reported; }
  /// Its topic does not match our prefix (its WELCOME said so): everything of it is ignored.
  [[nodiscard]] bool filtered() const noexcept { return m_filtered; }
  void filter() noexcept { m_filtered = true; }
  /// Before the WELCOME: the first sequence heard of it (0: none yet).
  [[nodiscard]] std::uint64_t first_heard() const noexcept { return m_first_heard; }

  /// The publisher's WELCOME: delivery starts at next_seq (`lost` before it were deleted
  /// by retention). Tells the sink once.
  void welcome(std::uint64_t next_seq, std::uint64_t lost, FrameSink& sink);
  void welcome(std::uint64_t next_seq, FrameSink& sink) { welcome(next_seq, 0, sink); }
  /// One envelope of a DATA datagram (a reference to `buffer` is taken if kept).
  void on_envelope(std::uint64_t seq, Buffer* buffer, std::size_t offset, std::size_t length);
  /// One FRAG datagram.
  void on_fragment(const Frag& f);
  /// A HEARTBEAT or BYE: the tail and what can still be retransmitted (`unicast`: an
  /// answer to our NAK, on the control socket).
  void on_heartbeat(const Heartbeat& h, bool bye, clock::time_point now, bool unicast = false);
  /// Moves deliverable messages into the sink (at most `budget`); returns how many.
  std::size_t deliver(FrameSink& sink, std::size_t budget);
  /// True when deliver() has something to hand over now.
  [[nodiscard]] bool ready() const noexcept;

  /// Builds a NAK of what is missing when one is due (randomized back-off, then
  /// retries); false when nothing is to be asked now.
  bool take_nak(clock::time_point now, Nak& out, double jitter);
  /// Gives up on what the publisher cannot retransmit any more, or everything missing
  /// once it has been silent for `silence` (it vanished).
  void expire(clock::time_point now, std::chrono::milliseconds silence);
  [[nodiscard]] clock::time_point next_nak() const noexcept { return m_nak_due; }
  [[nodiscard]] bool gap_pending() const noexcept { return m_welcomed && m_highest >= m_next; }

  /// The STATUS positions: received in order (or given up) up to; consumed up to.
  /// Before the WELCOME: first_heard() - 1 (sent with flag_heard), or 0.
  [[nodiscard]] std::uint64_t received_seq() const noexcept {
    return m_welcomed ? m_next - 1 : m_first_heard > 0 ? m_first_heard - 1 : 0;
  }
  [[nodiscard]] std::uint64_t consumed_seq() const noexcept;
  /// The handler finished `n` more messages of this publisher (backpressure).
  void consumed(std::uint32_t n) noexcept { m_consumed += n; }
  [[nodiscard]] clock::time_point last_heard() const noexcept { return m_last_heard; }
  /// Envelope bytes stored so far (paces a durable subscription's STATUS during catch-up).
  [[nodiscard]] std::uint64_t stored_bytes() const noexcept { return m_stored_bytes; }
  void heard(clock::time_point now) noexcept { m_last_heard = now; }

 private:
  struct Partial {
    std::uint64_t seq = 0;
    std::uint32_t msg_len = 0;
    std::uint32_t frag_size = 0;
    std::uint32_t count = 0;
    std::uint32_t received = 0;
    std::vector<std::uint64_t> bitmap;
    Buffer* buffer = nullptr;
  };
  struct Slot {
    Frame frame;
  };

  Slot& slot(std::uint64_t seq) noexcept { return m_ring[seq % ring_size]; }
  const Slot& slot(std::uint64_t seq) const noexcept { return m_ring[seq % ring_size]; }
  bool accept_seq(std::uint64_t seq);
  void note_heard(std::uint64_t seq) noexcept {
    if (!m_welcomed && (m_first_heard == 0 || seq < m_first_heard)) m_first_heard = seq;
  }
  void store(std::uint64_t seq, Frame&& frame, std::size_t bytes);
  Partial* partial_for(const Frag& f);
  void drop_partial(std::size_t index, bool count_incomplete);

  std::uint64_t m_id;
  std::uint32_t m_source;
  sockaddr_in m_from;
  StreamLimits m_limits;
  std::size_t& m_reassembly_in_use;
  StreamCounters& m_counters;
  std::vector<Slot> m_ring;
  std::vector<Partial> m_partials;
  bool m_welcomed = false;
  bool m_filtered = false;
  std::uint64_t m_first_heard = 0;  // before the WELCOME: the lowest sequence heard of
  bool m_bye = false;
  bool m_bye_reported = false;
  std::uint64_t m_baseline = 1;  // WELCOME's next_seq
  std::uint64_t m_next = 1;      // next sequence to hand over
  std::uint64_t m_highest = 0;   // highest sequence known to exist
  std::uint64_t m_oldest = 1;    // oldest the publisher still retains
  std::uint64_t m_give_up = 1;   // missing sequences below this are skipped, not waited for
  std::uint64_t m_bye_last = 0;
  std::uint64_t m_present = 0;   // frames held in the ring
  std::uint64_t m_skipped = 0;   // sequences given up (count as consumed: they hold no window)
  std::uint64_t m_consumed = 0;  // handler finished (backpressure only)
  std::uint64_t m_stored_bytes = 0;
  clock::time_point m_nak_due = clock::time_point::max();
  clock::time_point m_last_heard{};
  std::uint32_t m_nak_attempts = 0;
};

}  // namespace rill::detail::udp
