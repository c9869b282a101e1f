// The durable half of the udp publisher: a transient_local or persistent publisher
// serves a joining durable subscription the history it asked for by unicast to its
// control address (DATA/FRAG datagrams of the normal format, flagged flag_durable),
// paced by what that subscription reports received (and, with backpressure, consumed),
// until the cursor reaches the live sequence; from then on the subscription lives on
// the multicast like any other. Lost history datagrams are NAKed as usual; what the
// retransmit window no longer holds is answered from the history, again by unicast.
// Acks come in the subscription's STATUS and are stored in the history.
#include <poll.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "base/logging.hpp"
#include "udp_publisher.hpp"
#include "udp_stream.hpp"

namespace rill::detail::udp {

namespace {

// History in flight to one subscription (sent, not yet reported received) is bounded by
// bytes and by messages: it must fit the subscriber's socket buffer and its reorder ring
// (PublisherStream::ring_size), or it would be lost and asked for again.
constexpr std::size_t history_window_bytes = 4u << 20;
constexpr std::uint64_t history_window_max = PublisherStream::ring_size / 2;
constexpr std::uint64_t history_window_min = 16;
// Datagrams answered from the history for one NAK.
constexpr unsigned nak_history_budget = 32;

}  // namespace

void UdpPublisher::reject(const Status& s, const DurableRequest& q, DurabilityKind offered, std::string_view reason,
                          const sockaddr_in& to) {
  const auto requested = static_cast<DurabilityKind>(q.kind);
  if (s.subscription_id != m_last_rejected) {
    m_last_rejected = s.subscription_id;
    ++m_stats.incompatible;
    log().warn("publisher {:016x}: refused subscription {:016x}: it asks for {}, this publisher offers {} ({})",
               m_config.publisher_id, s.subscription_id, to_string(requested), to_string(offered), reason);
  }
  std::array<std::byte, 32 + max_name_bytes> buf;
  const auto n = encode_reject(buf, m_config.publisher_id,
                               {.subscription_id = s.subscription_id,
                                .offered = static_cast<std::uint8_t>(offered),
                                .requested = static_cast<std::uint8_t>(requested),
                                .reason = reason});
  m_sock.send_to(std::span(buf).first(n), to);
}

AdmissionRequest admission_request(const Status& s, const DurableRequest& q) {
  return {.subscription_id = s.subscription_id,
          .requested = static_cast<DurabilityKind>(q.kind),
          .from = static_cast<StartFrom>(q.from),
          .history_limit = q.history,
          .durable_name = q.name,
          .group = s.group};
}

bool UdpPublisher::admit(Receiver& r, const Status& s, const DurableRequest* q, const sockaddr_in& /*from*/) {
  if (q == nullptr) return true;  // volatile: live from now on (checked by on_status otherwise)
  const auto req = admission_request(s, *q);
  r.durability = req.requested;
  r.durable_name = std::string(q->name);
  if (!r.matches) return true;
  auto start = start_subscription(m_history, m_next_seq, req, fmt::format("publisher {:016x}", m_config.publisher_id));
  r.lost = start.lost;
  r.join_seq = start.first;
  r.cursor = std::move(start.cursor);
  r.consumed = r.received = r.join_seq - 1;
  return true;
}

void UdpPublisher::send_unicast(std::span<std::byte> dgram, const sockaddr_in& to) {
  mark_history(dgram);
  if (!m_sock.send_to(dgram, to) && (errno == EAGAIN || errno == ENOBUFS)) {
    // The send buffer is full: give the kernel a moment (a lost one is NAKed back anyway).
    pollfd p{m_sock.fd(), POLLOUT, 0};
    ::poll(&p, 1, 5);
    m_sock.send_to(dgram, to);
  }
  ++m_counters.history_datagrams;
}

Result<unsigned> UdpPublisher::send_history(Receiver& r, HistoryCursor& cursor, std::uint64_t limit, unsigned budget) {
  const auto max = m_options.max_datagram();
  const std::span<std::byte> out(m_hist_dgram.data(), max);
  std::size_t len = 0;
  std::uint64_t first = 0;
  std::uint32_t count = 0;
  unsigned sent = 0;
  const auto close = [&] {
    if (count == 0) return;
    encode_data_header(out, m_config.publisher_id, first, count);
    send_unicast(out.first(len), r.addr);
    ++sent;
    count = 0;
  };
  while (sent < budget) {
    auto next = cursor.next(limit);
    if (!next) {
      close();
      return std::unexpected(next.error());
    }
    if (!*next) break;
    const auto env = **next;
    const auto seq = cursor.position() - 1;
    r.avg_bytes = (r.avg_bytes * 7 + env.size()) / 8;
    const auto need = entry_bytes(env.size());
    // One DATA datagram carries consecutive sequences (the history may have a hole).
    if (count > 0 && (len + need > max || first + count != seq)) close();
    if (data_header_bytes + need > max) {
      const auto frag_size = max - frag_header_bytes;
      const auto frags = fragment_count(env.size(), frag_size);
      for (std::uint32_t i = 0; i < frags; ++i) {
        const std::size_t offset = std::size_t{i} * frag_size;
        const auto piece = env.subspan(offset, std::min(frag_size, env.size() - offset));
        const auto n = encode_frag(out, m_config.publisher_id,
                                   {.seq = seq,
                                    .msg_len = static_cast<std::uint32_t>(env.size()),
                                    .frag_size = static_cast<std::uint32_t>(frag_size),
                                    .index = i,
                                    .count = frags,
                                    .offset = static_cast<std::uint32_t>(offset),
                                    .bytes = piece});
        send_unicast(out.first(n), r.addr);
      }
      sent += frags;
      continue;
    }
    if (count == 0) {
      len = data_header_bytes;
      first = seq;
    }
    len = append_entry(out, len, env);
    ++count;
  }
  close();
  return sent;
}

void UdpPublisher::pump_receiver(Receiver& r, unsigned budget) {
  // Never more in flight than its socket and reorder ring hold; with backpressure never
  // beyond the window it granted (history included).
  const auto window = std::clamp<std::uint64_t>(history_window_bytes / std::max<std::size_t>(r.avg_bytes, 1),
                                                history_window_min, history_window_max);
  auto limit = std::min(m_next_seq, r.received + 1 + window);
  if (r.policy == PolicyKind::backpressure) limit = std::min(limit, r.consumed + 1 + r.window);
  const auto before = r.cursor->position();
  auto sent = send_history(r, *r.cursor, limit, budget);
  m_stats.replayed += r.cursor->position() - before;
  if (!sent) {
    // Its NAKs for the rest are answered from the history too, and fail the same way:
    // it is told they are gone (a gap it counts), never silently skipped.
    log().error("publisher {:016x}: history for subscription {:016x} is unreadable from {}: {}", m_config.publisher_id,
                r.subscription_id, r.cursor->position(), sent.error().message());
    r.cursor.reset();
    --m_catching_up;
    return;
  }
  if (r.cursor->position() < m_next_seq) return;
  // Caught up: from the next message on it is sent live.
  if (const auto lost = r.cursor->lost(); lost > 0) {
    log().warn("publisher {:016x}: subscription {:016x} missed {} history messages overwritten while it caught up",
               m_config.publisher_id, r.subscription_id, lost);
  }
  log().info("publisher {:016x}: subscription {:016x} caught up at {}", m_config.publisher_id, r.subscription_id,
             m_next_seq);
  r.cursor.reset();
  --m_catching_up;
}

void UdpPublisher::pump_history(unsigned budget) {
  for (auto& r : m_receivers) {
    if (r.catching_up() && r.welcomed) pump_receiver(r, budget);
  }
}

std::uint64_t UdpPublisher::serve_from_history(Receiver& r, std::uint64_t first, std::uint64_t last) {
  const auto oldest = m_history->start_for(StartFrom::start, {}, 0).from;
  first = std::max(first, oldest);
  if (first > last) return oldest;
  auto cursor = m_history->cursor(first);
  if (cursor) {
    const auto served = send_history(r, **cursor, last + 1, nak_history_budget);
    if (served) {
      m_counters.history_naked += (*cursor)->position() - first;
      // Numbers a crashed publisher handed out and never logged (PROTOCOL.md 13.6) are
      // lost records, which the cursor skips: the subscriber gives them up (a gap it counts).
      if ((*cursor)->lost() > 0) return last + 1;
      return oldest;
    }
    cursor = std::unexpected(served.error());
  }
  log().error("publisher {:016x}: cannot answer a NAK of subscription {:016x} for {}..{} from the history: {}",
              m_config.publisher_id, r.subscription_id, first, last, cursor.error().message());
  return last + 1;  // unreadable: it gives these up (and counts the gap)
}

void UdpPublisher::note_ack(Receiver& r, std::uint64_t seq) {
  if (seq <= r.acked || !r.durable()) return;
  if (seq > last_sent()) {
    ++m_stats.bad_control;  // acknowledging what was never sent
    return;
  }
  r.acked = seq;
  ++m_stats.acks;
  if (m_history != nullptr && !r.durable_name.empty()) {
    m_history->ack(r.durable_name, seq);
    m_acks_pending = true;
  }
}

void UdpPublisher::flush_acks() {
  if (!m_acks_pending) return;
  m_acks_pending = false;
  // One store per control drain, not per STATUS.
  if (auto stored = m_history->flush_acks(); !stored) {
    log().warn("publisher {:016x}: acknowledgements not stored yet: {}", m_config.publisher_id,
               stored.error().message());
  }
}

}  // namespace rill::detail::udp
