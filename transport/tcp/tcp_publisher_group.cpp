// Consumer groups on the tcp publisher: subscriptions sharing a group name split the
// messages, each message to one member (round-robin among those with room). A durable
// group (persistent publisher, persistent request) keeps what each member has not
// acknowledged; when a member leaves or dies, that goes to the other members, read back
// from the log, and the group's acknowledged position is stored as "group:NAME".
#include <zmq.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "base/logging.hpp"
#include "tcp_publisher.hpp"
#include "tcp_wire.hpp"

namespace rill::detail::tcp {

namespace {

constexpr unsigned group_frames_per_pump = 16;

}  // namespace

TcpPublisher::Group& TcpPublisher::join_group(Peer& peer, const Subscribe& s, DurabilityKind offered) {
  peer.group = std::string(s.group);
  ++m_group_members;
  auto it = std::find_if(m_groups.begin(), m_groups.end(), [&](const Group& g) { return g.name == peer.group; });
  if (it != m_groups.end()) return *it;
  Group& g = m_groups.emplace_back();
  g.name = peer.group;
  g.durable = m_history != nullptr && offered == DurabilityKind::persistent &&
              s.durability == static_cast<std::uint8_t>(DurabilityKind::persistent);
  g.acked = m_next_seq - 1;
  if (g.durable) {
    const auto start = start_durable_group(*m_history, static_cast<StartFrom>(s.from), g.name, m_next_seq, g.resend);
    g.acked = start.acked;
    if (start.lost > 0) {
      log().warn("publisher {:016x}: group '{}' starts at {}: {} messages it had not handled were deleted by retention",
                 m_config.publisher_id, g.name, start.acked + 1, start.lost);
    }
  }
  log().info("publisher {:016x}: consumer group '{}' formed ({}; {} messages to catch up)", m_config.publisher_id,
             g.name, g.durable ? "durable" : "volatile", g.resend.empty() ? 0 : m_next_seq - g.resend.front().first);
  return g;
}

TcpPublisher::Peer* TcpPublisher::pick_member(Group& g, std::uint32_t envelopes) {
  const auto n = m_peers.size();
  for (std::size_t i = 0; i < n; ++i) {
    const auto at = (g.next_member + i) % n;
    auto& p = m_peers[at];
    if (p.group != g.name || p.dead) continue;
    if (p.sub->policy == PolicyKind::backpressure && p.sub->credit < envelopes) continue;
    g.next_member = at + 1;
    return &p;
  }
  return nullptr;
}

const TcpPublisher::Peer* TcpPublisher::blocking_group(std::int64_t needed) const noexcept {
  // A volatile group holds publish() only when none of its members has room (a durable
  // group never does: what no member can take now is read back from the log later).
  for (const auto& g : m_groups) {
    if (g.durable) continue;
    const Peer* full = nullptr;
    bool room = false;
    for (const auto& p : m_peers) {
      if (p.group != g.name || p.dead) continue;
      if (p.sub->policy != PolicyKind::backpressure || p.sub->credit >= needed) {
        room = true;
        break;
      }
      full = &p;
    }
    if (!room && full != nullptr) return full;
  }
  return nullptr;
}

void TcpPublisher::send_to_groups(std::span<const std::byte> frame, std::uint32_t envelopes, std::uint64_t first_seq) {
  const auto last_seq = first_seq + envelopes - 1;
  for (auto& g : m_groups) {
    Peer* member = pick_member(g, envelopes);
    bool sent = false;
    while (member != nullptr && !sent) {
      if (zmq_send(m_sock, member->sub->routing_id.data(), member->sub->routing_id.size(), ZMQ_SNDMORE | ZMQ_DONTWAIT) >=
              0 &&
          zmq_send(m_sock, frame.data(), frame.size(), ZMQ_DONTWAIT) >= 0) {
        sent = true;
        break;
      }
      if (zmq_errno() != EAGAIN) member->dead = true;
      // Full or gone: try the next member, once around at most.
      Peer* next = pick_member(g, envelopes);
      member = next == member ? nullptr : next;
    }
    if (sent) {
      if (member->sub->policy == PolicyKind::backpressure) member->sub->credit -= envelopes;
      if (g.durable) append_range(member->in_flight, first_seq, last_seq);
    } else if (g.durable) {
      add_range(g.resend, first_seq, last_seq);  // read back from the log when a member has room
    } else {
      m_stats.peer_drops += envelopes;  // a volatile group with no member able to take it
    }
  }
}

void TcpPublisher::member_acked(Peer& peer, std::uint64_t seq) {
  if (seq >= m_next_seq) {
    ++m_stats.bad_control;
    return;
  }
  // In-flight runs are in the order they were sent; the ack covers every run up to the
  // one holding `seq`. One it was never sent changes nothing.
  auto& runs = peer.in_flight;
  const auto hit =
      std::find_if(runs.begin(), runs.end(), [&](const SeqRange& r) { return seq >= r.first && seq <= r.last; });
  peer.acked = std::max(peer.acked, seq);
  ++m_stats.acks;
  if (hit == runs.end()) return;
  if (seq == hit->last) {
    runs.erase(runs.begin(), std::next(hit));
  } else {
    hit->first = seq + 1;
    runs.erase(runs.begin(), hit);
  }
  for (auto& g : m_groups) {
    if (g.name == peer.group) advance_group_ack(g);
  }
}

void TcpPublisher::member_left(Peer& peer) {
  auto g = std::find_if(m_groups.begin(), m_groups.end(), [&](const Group& x) { return x.name == peer.group; });
  if (g == m_groups.end()) return;
  std::uint64_t pending = 0;
  for (const auto& r : peer.in_flight) {
    add_range(g->resend, r.first, r.last);
    pending += r.last - r.first + 1;
  }
  peer.in_flight.clear();
  if (pending > 0) {
    log().info(
        "publisher {:016x}: group '{}' member {:016x} left with {} unacknowledged messages; they go to another member",
        m_config.publisher_id, g->name, peer.sub->subscription_id, pending);
  }
  const bool others = std::any_of(m_peers.begin(), m_peers.end(),
                                  [&](const Peer& p) { return &p != &peer && p.group == peer.group && !p.dead; });
  if (!others && !g->durable) m_groups.erase(g);  // a durable group keeps its place for the next member
}

void TcpPublisher::advance_group_ack(Group& g) {
  auto low = m_next_seq;
  if (!g.resend.empty()) low = std::min(low, g.resend.front().first);
  for (const auto& p : m_peers) {
    if (p.group != g.name) continue;
    for (const auto& r : p.in_flight) low = std::min(low, r.first);
  }
  advance_group_position(g.acked, low, g.durable ? m_history : nullptr, g.name);
}

void TcpPublisher::pump_groups() {
  for (auto& g : m_groups) {
    if (!g.durable) continue;
    for (unsigned frames = 0; frames < group_frames_per_pump && !g.resend.empty(); ++frames) {
      auto& run = g.resend.front();
      Peer* member = pick_member(g, 1);
      if (member == nullptr) break;
      if (!g.cursor || g.cursor->position() != run.first) {
        auto cursor = m_history->cursor(run.first);
        if (!cursor) {
          log().error("publisher {:016x}: group '{}' cannot read the log at {}: {}", m_config.publisher_id, g.name,
                      run.first, cursor.error().message());
          break;
        }
        g.cursor = std::move(*cursor);
      }
      const auto lost_before = g.cursor->lost();
      std::uint32_t room = history_batch_limit;
      if (member->sub->policy == PolicyKind::backpressure) {
        room = static_cast<std::uint32_t>(std::min<std::int64_t>(room, member->sub->credit));
      }
      std::vector<std::byte>& out = m_group_frame;
      auto filled = fill_history_frame(*g.cursor, run.last + 1, room, out);
      if (!filled) {
        log().error("publisher {:016x}: group '{}': {}", m_config.publisher_id, g.name, filled.error().message());
        g.cursor.reset();
        break;
      }
      const auto skipped = g.cursor->lost() - lost_before;  // deleted by retention meanwhile
      const auto count = *filled;
      if (count == 0 && skipped == 0) break;  // not written yet
      const auto first = run.first + skipped;
      if (count > 0) {
        if (!send_to(*member, out, count)) {
          g.cursor.reset();  // read again from run.first next time
          break;
        }
        append_range(member->in_flight, first, first + count - 1);
        m_stats.redelivered += count;
      }
      run.first = first + count;
      if (run.first > run.last) g.resend.pop_front();
    }
    advance_group_ack(g);
  }
}

}  // namespace rill::detail::tcp
