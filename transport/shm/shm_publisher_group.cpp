// Consumer groups on the shm publisher: slots whose request names the same group split
// the messages, each pushed into one member's ring with that member's holder bit only
// (round-robin among members with room). A durable group (persistent publisher and
// persistent request) remembers what each member was pushed and has not acknowledged;
// when a member leaves, or dies (slot liveness, as for any subscriber), that is pushed to
// the other members again, read back from the log and paced by their rings' room as
// history is, and the group's acknowledged position is stored as "group:NAME". The tcp
// publisher's groups (tcp_publisher_group.cpp) are the model; PROTOCOL.md 11.10.
#include <algorithm>
#include <cstring>

#include "base/logging.hpp"
#include "shm_publisher.hpp"

namespace rill::detail::shm {

std::optional<std::uint64_t> ShmPublisher::join_group(Peer& p, std::string name, DurabilityKind requested,
                                                      StartFrom from) {
  auto it = std::find_if(m_groups.begin(), m_groups.end(),
                         [&](const Group& g) { return g.name == name && (g.members > 0 || g.durable); });
  if (it == m_groups.end()) {
    // A volatile group that lost its last member left a free place.
    it = std::find_if(m_groups.begin(), m_groups.end(), [](const Group& g) { return g.members == 0 && !g.durable; });
    if (it == m_groups.end()) it = m_groups.emplace(m_groups.end());
    Group& g = *it;
    g = Group{};
    g.name = std::move(name);
    g.durable = m_history != nullptr && m_history->offered() == DurabilityKind::persistent &&
                requested == DurabilityKind::persistent;
    g.acked = m_next_seq - 1;
    if (g.durable) {
      // What the group had not acknowledged when the publisher last stopped is pushed again.
      const auto start = start_durable_group(*m_history, from, g.name, m_next_seq, g.resend);
      g.acked = start.acked;
      if (start.lost > 0) {
        log().warn("shm://{}: group '{}' starts at {}: {} messages it had not handled were deleted by retention",
                   m_options.name, g.name, start.acked + 1, start.lost);
      }
    }
    log().info("shm://{}: consumer group '{}' formed ({}; {} messages to catch up)", m_options.name, g.name,
               g.durable ? "durable" : "volatile", g.resend.empty() ? 0 : m_next_seq - g.resend.front().first);
  }
  ++it->members;
  p.group = static_cast<int>(it - m_groups.begin());
  if (it->durable) {
    p.acks = true;  // take_ack reads its word as a member's
    ++m_ack_peers;
  }
  return m_next_seq;  // a member is sent its share from now on; the group's backlog by pump_groups
}

void ShmPublisher::leave_group(Peer& p) {
  // Called once its last ack was taken (forget_durable) and its ring drained.
  const auto gi = static_cast<std::size_t>(p.group);
  Group& g = m_groups[gi];
  --g.members;
  p.group = -1;
  std::uint64_t pending = 0;
  for (const auto& r : p.in_flight) {
    add_range(g.resend, r.first, r.last);
    pending += r.last - r.first + 1;
  }
  p.in_flight.clear();
  if (pending > 0) {
    log().info("shm://{}: group '{}' member {:016x} left with {} unacknowledged messages; they go to another member",
               m_options.name, g.name, p.subscription_id, pending);
  }
  if (g.durable) advance_group_ack(gi);
}

bool ShmPublisher::has_room(std::uint32_t slot, Peer& p, std::uint32_t size) {
  const auto t = tail_of(slot, p);  // a bad tail evicts the slot
  if (!t) return false;
  if (p.kind != PolicyKind::buffer) return p.head - *t < p.capacity;
  if (!sync_buffer_tail(slot, p)) return false;
  return p.head - p.tail_seen < p.capacity && p.queued_bytes + size <= p.byte_limit;
}

std::uint32_t ShmPublisher::pick_member(std::size_t gi, std::uint32_t size) {
  const auto n = m_map->slot_count();
  for (std::uint32_t k = 0; k < n; ++k) {
    const auto slot = (m_groups[gi].next_member + k) % n;
    Peer& p = m_peers[slot];
    if (!p.active || p.group != static_cast<int>(gi) || !has_room(slot, p, size)) continue;
    m_groups[gi].next_member = slot + 1;
    return slot;
  }
  return max_slots;
}

std::uint32_t ShmPublisher::deliver_to_group(std::size_t gi, std::uint32_t size) {
  if (const auto slot = pick_member(gi, size); slot != max_slots) return slot;
  Group& g = m_groups[gi];
  if (g.durable || g.members == 0) return max_slots;  // durable: read back from the log later
  // A volatile group whose members are all full: the next member's policy decides
  // (drop its oldest to make room, or drop this message).
  const auto n = m_map->slot_count();
  for (std::uint32_t k = 0; k < n; ++k) {
    const auto slot = (g.next_member + k) % n;
    Peer& p = m_peers[slot];
    if (!p.active || p.group != static_cast<int>(gi)) continue;
    g.next_member = slot + 1;
    bool deliver = false;
    if (p.kind == PolicyKind::drop_oldest) deliver = make_room_oldest(slot, p);
    if (p.kind == PolicyKind::buffer) deliver = make_room_buffer(slot, p, size);
    if (deliver) return slot;
    if (p.active) count_drop(slot, p);
    return max_slots;
  }
  return max_slots;
}

void ShmPublisher::route_to_groups(std::uint64_t seq, std::uint32_t size, std::uint32_t* targets, std::size_t& n,
                                   std::uint64_t& holders) {
  for (std::size_t gi = 0; gi < m_groups.size(); ++gi) {
    if (m_groups[gi].members == 0 && !m_groups[gi].durable) continue;
    const auto slot = deliver_to_group(gi, size);
    if (slot == max_slots) {
      if (m_groups[gi].durable) add_range(m_groups[gi].resend, seq, seq);
      continue;
    }
    targets[n++] = slot;
    holders |= 1ull << slot;
    if (m_groups[gi].durable) append_range(m_peers[slot].in_flight, seq, seq);
  }
}

std::uint32_t ShmPublisher::group_blocker() {
  // A volatile group holds publish() only when none of its members has room and one of
  // them asks for backpressure (a durable group never does: the log keeps what no member
  // can take now). Members of other policies always have room by their policy.
  for (std::size_t gi = 0; gi < m_groups.size(); ++gi) {
    if (m_groups[gi].durable || m_groups[gi].members == 0) continue;
    std::uint32_t full = max_slots;
    bool room = false;
    for (std::uint32_t slot = 0; slot < m_map->slot_count() && !room; ++slot) {
      Peer& p = m_peers[slot];
      if (!p.active || p.group != static_cast<int>(gi)) continue;
      if (p.kind != PolicyKind::backpressure) {
        room = true;
        break;
      }
      const auto t = tail_of(slot, p);
      if (!t) continue;
      if (p.head - *t < p.capacity) room = true;
      full = slot;
    }
    if (!room && full != max_slots) return full;
  }
  return max_slots;
}

void ShmPublisher::take_member_ack(std::uint32_t slot, Peer& p) {
  // The word names the last message the member handled, in push order; any change is news.
  const auto seq = m_map->slot(slot).acked.load(std::memory_order_acquire);
  if (seq == p.ack_word) return;
  p.ack_word = seq;
  if (seq >= m_next_seq) {
    ++m_stats.bad_control;  // never sent
    return;
  }
  ++m_stats.acks;
  // The ack covers every run up to the one holding `seq`; one it was never pushed changes nothing.
  auto& runs = p.in_flight;
  const auto hit =
      std::find_if(runs.begin(), runs.end(), [&](const SeqRange& r) { return seq >= r.first && seq <= r.last; });
  if (hit == runs.end()) return;
  if (seq == hit->last) {
    runs.erase(runs.begin(), std::next(hit));
  } else {
    hit->first = seq + 1;
    runs.erase(runs.begin(), hit);
  }
  advance_group_ack(static_cast<std::size_t>(p.group));
}

void ShmPublisher::advance_group_ack(std::size_t gi) {
  Group& g = m_groups[gi];
  auto low = m_next_seq;
  if (!g.resend.empty()) low = std::min(low, g.resend.front().first);
  for (const auto slot : m_active) {
    const Peer& p = m_peers[slot];
    if (p.group != static_cast<int>(gi)) continue;
    for (const auto& r : p.in_flight) low = std::min(low, r.first);
  }
  advance_group_position(g.acked, low, g.durable ? m_history : nullptr, g.name);
}

void ShmPublisher::pump_groups(unsigned budget) {
  // Paced by the members' rings and the free chunks, as history is: what does not fit
  // now stays in `resend`, and a publish never waits for it.
  for (std::size_t gi = 0; gi < m_groups.size(); ++gi) {
    if (!m_groups[gi].durable || m_groups[gi].resend.empty()) continue;
    std::uint64_t woken = 0;
    for (unsigned pushed = 0; pushed < budget && !m_groups[gi].resend.empty();) {
      Group& g = m_groups[gi];
      auto& run = g.resend.front();
      const auto slot = pick_member(gi, 0);
      if (slot == max_slots) break;
      if (!g.cursor || g.cursor->position() != run.first) {
        auto cursor = m_history->cursor(run.first);
        if (!cursor) {
          log().error("shm://{}: group '{}' cannot read the log at {}: {}", m_options.name, g.name, run.first,
                      cursor.error().message());
          break;
        }
        g.cursor = std::move(*cursor);
      }
      const auto lost_before = g.cursor->lost();
      auto next = g.cursor->next(run.last + 1);
      if (!next) {
        log().error("shm://{}: group '{}': {}", m_options.name, g.name, next.error().message());
        g.cursor.reset();
        break;
      }
      // Deleted by retention meanwhile: skipped (the cursor counts them).
      run.first = std::max(run.first, g.cursor->position() - (*next ? 1 : 0));
      if (!*next) {
        if (g.cursor->lost() == lost_before) break;  // not readable yet
        if (run.first > run.last) g.resend.pop_front();
        continue;
      }
      const auto env = **next;
      const auto seq = run.first;
      auto idx = allocate(env.size(), std::chrono::nanoseconds(0), false);
      if (!idx && idx.error().code != Errc::too_large) {
        g.cursor.reset();  // every chunk is in use: read it again next time
        break;
      }
      if (idx) {
        Peer& p = m_peers[slot];
        push_copy(slot, p, *idx, env, seq);
        append_range(p.in_flight, seq, seq);
        woken |= 1ull << slot;
        ++m_stats.redelivered;
        ++pushed;
      } else {
        log().error("shm://{}: group '{}': message {} ({} bytes) fits no chunk; the group misses it", m_options.name,
                    g.name, seq, env.size());
      }
      run.first = seq + 1;
      if (run.first > run.last) g.resend.pop_front();
    }
    for (std::uint32_t slot = 0; woken != 0; ++slot, woken >>= 1) {
      if (woken & 1u) wake(slot);
    }
    advance_group_ack(gi);
  }
}

}  // namespace rill::detail::shm
