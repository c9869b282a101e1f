// The roster half of the shm publisher: slots pre-claimed for the subscriptions
// registered in the endpoint's directory, slots taken in when a subscriber claims one,
// drained when it leaves, reclaimed when its process dies. PROTOCOL.md 11.4 and 11.5.
#include <algorithm>
#include <cstring>

#include "base/logging.hpp"
#include "shm_publisher.hpp"

namespace rill::detail::shm {

namespace {

using clock = std::chrono::steady_clock;

constexpr auto liveness_period = std::chrono::milliseconds(100);

}  // namespace

void ShmPublisher::preclaim(const std::vector<SubscriberRequest>& subs) {
  // The segment is new and not listed yet: no subscriber can claim a slot meanwhile. Each
  // registered subscription whose prefix matches gets a slot filled in with its request
  // and taken in now, so that it is sent this publisher's messages from the first; its
  // subscriber adopts the slot when it sees the channel (PROTOCOL.md 11.12).
  std::uint32_t slot = 0;
  for (const auto& r : subs) {
    if (slot == m_map->slot_count()) {
      log().warn("shm://{}: no slot left to pre-claim for subscription {:016x}; it joins when it claims one",
                 m_options.name, r.subscription_id);
      break;
    }
    auto& s = m_map->slot(slot++);
    s.owner_start = r.start;
    s.subscription_id = r.subscription_id;
    s.policy_kind = r.policy_kind;
    s.policy_capacity = r.policy_capacity;
    s.durability = r.durability;
    s.start_from = r.start_from;
    s.history = r.history;
    // read_subscriber() bounded both lengths.
    s.durable_name_bytes = static_cast<std::uint32_t>(r.durable_name.size());
    std::memcpy(s.durable_name, r.durable_name.data(), r.durable_name.size());
    s.group_bytes = static_cast<std::uint32_t>(r.group.size());
    std::memcpy(s.group, r.group.data(), r.group.size());
    s.preclaimed.store(1, std::memory_order_relaxed);
    s.owner.store(make_owner(r.pid, SlotState::active), std::memory_order_release);
  }
  if (slot == 0) return;
  m_map->header().roster.fetch_add(1, std::memory_order_acq_rel);
  refresh_roster();
}

// ---- joins, departures, deaths ------------------------------------------------

void ShmPublisher::refresh_roster() {
  const auto r = m_map->header().roster.load(std::memory_order_acquire);
  if (r == m_roster_seen) return;
  m_roster_seen = r;
  for (std::uint32_t i = 0; i < m_map->slot_count(); ++i) {
    const auto owner = m_map->slot(i).owner.load(std::memory_order_acquire);
    const auto state = owner_state(owner);
    if (state == SlotState::active && !m_peers[i].active) {
      if (!m_peers[i].rejected) take_in(i, owner);
    } else if (m_peers[i].active && state != SlotState::active) {
      retire(i);
    } else if (m_peers[i].rejected && state != SlotState::active) {
      // A refused slot was never given a ring entry or a chunk: it is free at once.
      m_peers[i].rejected = false;
      if (state == SlotState::leaving) m_map->slot(i).owner.store(0, std::memory_order_release);
    }
  }
}

void ShmPublisher::take_in(std::uint32_t slot, std::uint64_t owner) {
  auto& s = m_map->slot(slot);
  Peer& p = m_peers[slot];
  p = Peer{};
  const auto kind = s.policy_kind;
  const auto cap = s.policy_capacity;
  if (kind < static_cast<std::uint32_t>(PolicyKind::drop_oldest) ||
      kind > static_cast<std::uint32_t>(PolicyKind::backpressure) || cap == 0) {
    log().warn("shm://{}: slot {} asks for an unknown policy; ignoring it", m_options.name, slot);
    return;
  }
  p.kind = static_cast<PolicyKind>(kind);
  p.capacity =
      p.kind == PolicyKind::buffer ? m_map->ring_capacity() : std::min<std::uint64_t>(cap, m_map->ring_capacity());
  p.byte_limit = p.kind == PolicyKind::buffer ? cap : 0;
  if (p.kind == PolicyKind::buffer) p.sizes.assign(m_map->ring_capacity(), 0);
  p.head = p.tail_seen = s.tail.load(std::memory_order_acquire);
  p.pid = owner_pid(owner);
  p.start = s.owner_start;
  p.subscription_id = s.subscription_id;
  const auto first = accept_request(slot, p);
  if (!first) return;  // refused: the subscriber sees `rejected`
  p.active = true;
  s.joined.store(*first, std::memory_order_release);  // last: the subscriber reads lost and offered after it
  m_active.push_back(slot);
  if (p.kind == PolicyKind::backpressure) ++m_backpressure_peers;
  ++m_stats.joined;
  m_stats.subscribers = m_active.size();
  log().info("shm://{}: subscription {:016x} (pid {}) joined in slot {}, {}", m_options.name, p.subscription_id, p.pid,
             slot, to_string(Policy{p.kind, p.kind == PolicyKind::buffer ? p.byte_limit : p.capacity}));
}

void ShmPublisher::retire(std::uint32_t slot) {
  // The subscriber left: give back what its ring still holds, then wait for the
  // samples it may still keep before the slot is reused (their bits name this slot).
  Peer& p = m_peers[slot];
  auto& s = m_map->slot(slot);
  const auto mask = m_map->ring_capacity() - 1;
  const auto floor = p.head >= m_map->ring_capacity() ? p.head - m_map->ring_capacity() : 0;
  for (auto t = std::max(s.tail.load(std::memory_order_acquire), floor); t < p.head;) {
    if (s.tail.compare_exchange_strong(t, t + 1, std::memory_order_acq_rel)) {
      const auto entry = m_map->ring(slot)[t & mask].load(std::memory_order_relaxed);
      if (auto* h = m_map->chunk(entry_chunk(entry))) h->holders.fetch_and(~(1ull << slot), std::memory_order_release);
      ++t;
    }
  }
  forget_durable(slot, p);
  if (p.group >= 0) leave_group(p);  // after its last ack: what it had not acknowledged goes to the others
  if (p.kind == PolicyKind::backpressure) --m_backpressure_peers;
  p.active = false;
  std::erase(m_active, slot);
  ++m_stats.left;
  m_stats.subscribers = m_active.size();
  const auto owner = s.owner.load(std::memory_order_acquire);
  s.owner.store(make_owner(owner_pid(owner), SlotState::left), std::memory_order_release);
  m_left.push_back(slot);
  free_left_slots();
}

void ShmPublisher::clear_holder_bit(std::uint32_t slot) {
  const std::uint64_t keep = ~(1ull << slot);
  for (std::uint32_t i = 0; i < m_map->chunk_count(); ++i) {
    auto& holders = m_map->chunk(i)->holders;
    if (holders.load(std::memory_order_relaxed) & ~keep) holders.fetch_and(keep, std::memory_order_release);
  }
}

bool ShmPublisher::bit_still_held(std::uint32_t slot) const {
  const std::uint64_t bit = 1ull << slot;
  for (std::uint32_t i = 0; i < m_map->chunk_count(); ++i) {
    if (m_map->chunk(i)->holders.load(std::memory_order_relaxed) & bit) return true;
  }
  return false;
}

void ShmPublisher::free_left_slots() {
  std::erase_if(m_left, [&](std::uint32_t slot) {
    if (bit_still_held(slot)) return false;
    m_map->slot(slot).owner.store(0, std::memory_order_release);
    return true;
  });
}

void ShmPublisher::check_liveness() {
  m_next_liveness = clock::now() + liveness_period;
  for (std::uint32_t i = 0; i < m_map->slot_count(); ++i) {
    auto& s = m_map->slot(i);
    const auto owner = s.owner.load(std::memory_order_acquire);
    if (owner == 0) continue;
    const auto pid = owner_pid(owner);
    // A slot being claimed has no start time yet: only the pid can be checked.
    const bool alive = owner_state(owner) == SlotState::claiming
                           ? process_exists(static_cast<pid_t>(pid))
                           : process_alive(pid, m_peers[i].active ? m_peers[i].start : s.owner_start);
    if (!alive) {
      evict(i, "died");
    } else if (owner_state(owner) == SlotState::active && s.preclaimed.load(std::memory_order_acquire) != 0 &&
               !m_endpoint->registered(pid, m_peers[i].active ? m_peers[i].subscription_id : s.subscription_id)) {
      // Pre-claimed for a subscription that ended before it adopted the slot.
      evict(i, "ended before taking its pre-claimed slot");
    }
  }
  free_left_slots();
}

void ShmPublisher::evict(std::uint32_t slot, const char* why) {
  // Every chunk bit the slot held (queued or taken) is released, and the slot is free
  // for the next subscriber; safe whatever the subscriber was doing (bits are idempotent).
  auto& s = m_map->slot(slot);
  const auto owner = s.owner.load(std::memory_order_acquire);
  Peer& p = m_peers[slot];
  log().warn("shm://{}: subscription {:016x} (pid {}) {}; reclaiming its chunks", m_options.name, p.subscription_id,
             owner_pid(owner), why);
  p.rejected = false;
  if (p.active) {
    forget_durable(slot, p);
    if (p.group >= 0) leave_group(p);
    if (p.kind == PolicyKind::backpressure) --m_backpressure_peers;
    p.active = false;
    std::erase(m_active, slot);
    ++m_stats.left;
    m_stats.subscribers = m_active.size();
  }
  ++m_stats.reclaimed;
  std::erase(m_left, slot);
  clear_holder_bit(slot);
  auto expected = owner;
  if (s.owner.compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) {
    m_map->header().roster.fetch_add(1, std::memory_order_acq_rel);
  }
}

}  // namespace rill::detail::shm
