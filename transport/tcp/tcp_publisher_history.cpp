// The durable half of the tcp publisher: history for late joiners and durable
// subscriptions (sent by a cursor per subscription until it reaches the live sequence),
// acks, and refusing requests for more durability than is offered.
#include <algorithm>
#include <array>
#include <cstring>

#include <zmq.h>

#include "base/logging.hpp"
#include "tcp_publisher.hpp"
#include "tcp_wire.hpp"

namespace rill::detail::tcp {

namespace {

// One history frame carries at most this many bytes (a batch frame).
constexpr std::size_t history_batch_bytes = 256u << 10;
// Frames sent to one catching-up subscription per publish() (the live path must not
// stall) and per service() call.
constexpr unsigned frames_per_publish = 4;
constexpr unsigned frames_per_service = 64;

}  // namespace

void TcpPublisher::reject(const std::string& routing_id, const Subscribe& s, DurabilityKind offered,
                          std::string_view reason) {
  if (s.subscription_id != m_last_rejected) {
    m_last_rejected = s.subscription_id;
    ++m_stats.incompatible;
    log().warn("publisher {:016x}: refused subscription {:016x}: it asks for {}, this publisher offers {} ({})",
               m_config.publisher_id, s.subscription_id, to_string(static_cast<DurabilityKind>(s.durability)),
               to_string(offered), reason);
  }
  std::array<std::byte, max_control_bytes> buf;
  const auto n = encode_reject(buf, {.publisher_id = m_config.publisher_id,
                                     .subscription_id = s.subscription_id,
                                     .offered = static_cast<std::uint8_t>(offered),
                                     .requested = s.durability,
                                     .reason = reason});
  send_control(routing_id, std::span(buf).first(n));
}

AdmissionRequest admission_request(const Subscribe& s) {
  return {.subscription_id = s.subscription_id,
          .requested = static_cast<DurabilityKind>(s.durability),
          .from = static_cast<StartFrom>(s.from),
          .history_limit = s.history,
          .durable_name = s.durable_name,
          .group = s.group};
}

std::uint64_t TcpPublisher::history_start(Peer& peer, const Subscribe& s, std::uint64_t& lost) {
  auto start = start_subscription(m_history, m_next_seq, admission_request(s),
                                  fmt::format("publisher {:016x}", m_config.publisher_id));
  lost = start.lost;
  if (start.cursor) {
    peer.cursor = std::move(start.cursor);
    ++m_catching_up;
  }
  return start.first;
}

bool TcpPublisher::send_to(Peer& peer, std::span<const std::byte> frame, std::uint32_t envelopes) {
  if (zmq_send(m_sock, peer.sub->routing_id.data(), peer.sub->routing_id.size(), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
    if (zmq_errno() != EAGAIN) peer.dead = true;
    return false;  // a full pipe queues nothing: the frame is sent again later
  }
  if (zmq_send(m_sock, frame.data(), frame.size(), ZMQ_DONTWAIT) < 0) {
    peer.dead = true;
    return false;
  }
  if (peer.sub->policy == PolicyKind::backpressure) peer.sub->credit -= envelopes;
  m_stats.replayed += envelopes;
  return true;
}

Result<std::uint32_t> fill_history_frame(HistoryCursor& cursor, std::uint64_t limit, std::uint32_t max,
                                         std::vector<std::byte>& out) {
  out.resize(batch_header_bytes);
  std::memcpy(out.data(), batch_magic, 4);
  std::uint32_t count = 0;
  std::span<const std::byte> single;
  while (count < max && out.size() < history_batch_bytes) {
    auto next = cursor.next(limit);
    if (!next) {
      out.clear();
      return std::unexpected(next.error());
    }
    if (!*next) break;
    const auto env = **next;
    single = env;
    const auto at = out.size();
    const auto padded = (env.size() + 7) & ~std::size_t{7};
    out.resize(at + batch_entry_header_bytes + padded);
    const auto len = static_cast<std::uint32_t>(env.size());
    std::memcpy(out.data() + at, &len, 4);
    std::memset(out.data() + at + 4, 0, 4);
    std::memcpy(out.data() + at + batch_entry_header_bytes, env.data(), env.size());
    ++count;
  }
  if (count == 0) {
    out.clear();
  } else if (count == 1) {
    // A lone envelope goes bare (it lies 16 bytes into the frame; moved to the front).
    const auto size = single.size();
    std::memmove(out.data(), out.data() + batch_header_bytes + batch_entry_header_bytes, size);
    out.resize(size);
  } else {
    std::memcpy(out.data() + 4, &count, 4);
  }
  return count;
}

bool TcpPublisher::pump_peer(Peer& peer, unsigned budget) {
  for (unsigned frames = 0; frames < budget && !peer.dead; ++frames) {
    if (peer.held_count > 0) {
      if (!send_to(peer, peer.held, peer.held_count)) return true;
      peer.held.clear();
      peer.held_count = 0;
      if (!peer.cursor) {
        --m_catching_up;
        return false;
      }
      continue;
    }
    // Backpressure: never more than the window it granted, history included.
    std::int64_t room = history_batch_limit;
    if (peer.sub->policy == PolicyKind::backpressure) room = std::min<std::int64_t>(room, peer.sub->credit);
    if (room <= 0) return true;
    auto count = fill_history_frame(*peer.cursor, m_next_seq, static_cast<std::uint32_t>(room), peer.held);
    if (!count) {
      log().error("publisher {:016x}: history for subscription {:016x} is unreadable, dropping it: {}",
                  m_config.publisher_id, peer.sub->subscription_id, count.error().message());
      peer.dead = true;  // it rejoins (and is told) rather than silently skipping damage
      return false;
    }
    if (*count == 0) {
      if (peer.cursor->position() < m_next_seq) return true;  // the log writer has not written it yet
      // Caught up: from the next message on it is sent live.
      if (const auto lost = peer.cursor->lost(); lost > 0) {
        log().warn("publisher {:016x}: subscription {:016x} missed {} history messages overwritten while it caught up",
                   m_config.publisher_id, peer.sub->subscription_id, lost);
      }
      peer.cursor.reset();
      --m_catching_up;
      return false;
    }
    peer.held_count = *count;
    if (!send_to(peer, peer.held, *count)) return true;  // kept in `held` for the next round
    peer.held.clear();
    peer.held_count = 0;
  }
  return peer.catching_up();
}

void TcpPublisher::pump_history(bool publishing) {
  const unsigned budget = publishing ? frames_per_publish : frames_per_service;
  bool any_dead = false;
  for (auto& p : m_peers) {
    if (p.catching_up() && !p.dead && !p.sub->dead) pump_peer(p, budget);
    any_dead = any_dead || p.dead;
  }
  if (any_dead) remove_dead_peers();
}

void TcpPublisher::handle_ack(Peer& peer, const Ack& ack) {
  if (ack.seq >= m_next_seq) {
    ++m_stats.bad_control;  // acknowledging what was never sent
    return;
  }
  if (ack.seq <= peer.acked) return;
  peer.acked = ack.seq;
  ++m_stats.acks;
  if (m_history != nullptr && !peer.durable_name.empty()) m_history->ack(peer.durable_name, ack.seq);
}

}  // namespace rill::detail::tcp
