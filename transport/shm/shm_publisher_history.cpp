// The durable half of the shm publisher: a slot's durability request is checked when
// the slot is taken in, history is copied into the slot's ring (paced by the ring, never
// dropped) until it reaches the live sequence, and the acked word durable subscribers
// write is handed to the History. PROTOCOL.md section 11 describes the fields.
#include <algorithm>
#include <cstring>
#include <thread>

#include "base/logging.hpp"
#include "shm_futex.hpp"
#include "shm_publisher.hpp"

namespace rill::detail::shm {

namespace {

using clock = std::chrono::steady_clock;

// How long close() keeps sending history to subscriptions still catching up (as tcp's linger).
constexpr auto history_linger = std::chrono::seconds(2);

const char* reason_text(RejectReason why) {
  return why == RejectReason::durability ? "the publisher offers less durability than requested"
                                         : "malformed durability request";
}

}  // namespace

void ShmPublisher::reject(std::uint32_t slot, Peer& p, RejectReason why, std::string_view request) {
  auto& s = m_map->slot(slot);
  const auto offered = m_history ? m_history->offered() : DurabilityKind::volatile_;
  if (p.subscription_id != m_last_rejected) {
    m_last_rejected = p.subscription_id;
    ++m_stats.incompatible;
    log().warn("shm://{}: refused subscription {:016x} (pid {}): it asks for {}, this publisher offers {} ({})",
               m_options.name, p.subscription_id, p.pid, request, to_string(offered), reason_text(why));
  }
  p.rejected = true;
  s.offered.store(static_cast<std::uint32_t>(offered), std::memory_order_relaxed);
  s.rejected.store(static_cast<std::uint32_t>(why), std::memory_order_release);
  wake(slot);
}

std::optional<std::uint64_t> ShmPublisher::accept_request(std::uint32_t slot, Peer& p) {
  auto& s = m_map->slot(slot);
  const auto offered = m_history ? m_history->offered() : DurabilityKind::volatile_;
  // Read once into private memory: the segment may change under us.
  const auto kind = s.durability;
  const auto from = s.start_from;
  const auto history = s.history;
  const auto name_bytes = s.durable_name_bytes;
  if (kind > static_cast<std::uint32_t>(DurabilityKind::persistent) ||
      from > static_cast<std::uint32_t>(StartFrom::end) || name_bytes > max_durable_name_bytes) {
    reject(slot, p, RejectReason::malformed, "an unknown durability");
    return std::nullopt;
  }
  const auto requested = static_cast<DurabilityKind>(kind);
  std::string name(s.durable_name, name_bytes);
  const auto group_bytes = s.group_bytes;
  if (group_bytes > max_group_name_bytes) {
    reject(slot, p, RejectReason::malformed, "a consumer group name that is not one");
    return std::nullopt;
  }
  std::string group(s.group, group_bytes);
  const AdmissionRequest req{.subscription_id = p.subscription_id,
                             .requested = requested,
                             .from = static_cast<StartFrom>(from),
                             .history_limit = static_cast<std::uint32_t>(history),
                             .durable_name = name,
                             .group = group};
  std::string_view refused;
  if (const auto why = check_request(offered, req, &refused); why != Refusal::none) {
    reject(slot, p, static_cast<RejectReason>(why),
           why == Refusal::durability ? std::string_view(to_string(requested)) : refused);
    return std::nullopt;
  }
  s.offered.store(static_cast<std::uint32_t>(offered), std::memory_order_relaxed);
  s.lost.store(0, std::memory_order_relaxed);
  if (!group.empty()) return join_group(p, std::move(group), requested, static_cast<StartFrom>(from));
  auto start = start_subscription(m_history, m_next_seq, req, "shm://" + m_options.name);
  if (start.cursor) {
    p.cursor = std::move(start.cursor);
    ++m_catching_up;
  }
  if (requested == DurabilityKind::persistent && !name.empty()) {
    p.durable_name = std::move(name);
    p.acks = true;
    ++m_ack_peers;
  }
  s.lost.store(start.lost, std::memory_order_relaxed);
  return start.first;
}

void ShmPublisher::forget_durable(std::uint32_t slot, Peer& p) {
  if (p.acks) {
    take_ack(slot, p);  // the last position it wrote before it left or died
    p.acks = false;
    --m_ack_peers;
  }
  if (p.cursor) finish_catch_up(p);
}

void ShmPublisher::finish_catch_up(Peer& p) {
  if (const auto lost = p.cursor->lost(); lost > 0) {
    log().warn("shm://{}: subscription {:016x} missed {} history messages overwritten while it caught up",
               m_options.name, p.subscription_id, lost);
  }
  p.cursor.reset();
  p.held.clear();
  --m_catching_up;
}

void ShmPublisher::wake(std::uint32_t slot) {
  // Pairs with the subscriber's fence between raising `sleeping` and looking at its ring.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  auto& s = m_map->slot(slot);
  if (s.sleeping.load(std::memory_order_relaxed) != 0) {
    s.wake.fetch_add(1, std::memory_order_release);
    futex_wake(s.wake, 1);
  }
}

bool ShmPublisher::pump_peer(std::uint32_t slot, Peer& p, unsigned budget) {
  unsigned pushed = 0;
  bool evicted = false;
  while (pushed < budget) {
    const auto t = tail_of(slot, p);
    if (!t) {
      evicted = true;
      break;
    }
    if (p.kind == PolicyKind::buffer && !sync_buffer_tail(slot, p)) {
      evicted = true;
      break;
    }
    if (p.head - *t >= p.capacity) break;  // the ring is full: history waits, it is never dropped
    // A buffer policy's byte limit paces it too (one envelope may pass it, as a live one may).
    if (p.kind == PolicyKind::buffer && p.queued_bytes >= p.byte_limit) break;
    std::span<const std::byte> env;
    std::uint64_t seq = 0;
    if (!p.held.empty()) {
      env = p.held;
      seq = p.held_seq;
    } else {
      auto next = p.cursor->next(m_next_seq);
      if (!next) {
        // Damage is never skipped silently: it goes live, and its gap detection counts what it missed.
        log().error("shm://{}: history for subscription {:016x} is unreadable from {}, sending it live: {}",
                    m_options.name, p.subscription_id, p.cursor->position(), next.error().message());
        finish_catch_up(p);
        break;
      }
      if (!*next) {
        if (p.cursor->position() >= m_next_seq) finish_catch_up(p);  // caught up: live from now on
        break;                                                       // else the log has not made it readable yet
      }
      env = **next;
      seq = p.cursor->position() - 1;
    }
    auto idx = allocate(env.size(), std::chrono::nanoseconds(0), false);
    if (!idx) {
      if (idx.error().code == Errc::too_large) {
        log().error("shm://{}: history message {} ({} bytes) fits no chunk; subscription {:016x} misses it",
                    m_options.name, seq, env.size(), p.subscription_id);
        p.held.clear();
        continue;
      }
      if (p.held.empty()) {  // every chunk is in use: keep it for the next round
        p.held.assign(env.begin(), env.end());
        p.held_seq = seq;
      }
      break;
    }
    push_copy(slot, p, *idx, env, seq);
    ++pushed;
    ++m_stats.replayed;
    p.held.clear();
  }
  if (pushed > 0 && !evicted) wake(slot);
  return !evicted;
}

void ShmPublisher::pump_history(unsigned budget) {
  std::uint32_t active[max_slots];
  const std::size_t count = m_active.size();
  std::copy(m_active.begin(), m_active.end(), active);  // a bad tail evicts its slot meanwhile
  for (std::size_t k = 0; k < count && m_catching_up > 0; ++k) {
    Peer& p = m_peers[active[k]];
    if (p.active && p.cursor) pump_peer(active[k], p, budget);
  }
}

void ShmPublisher::take_ack(std::uint32_t slot, Peer& p) {
  if (p.group >= 0) return take_member_ack(slot, p);
  const auto seq = m_map->slot(slot).acked.load(std::memory_order_acquire);
  if (seq <= p.acked) return;  // nothing new (or backwards: written by someone else)
  if (seq >= m_next_seq) {
    if (seq != p.bad_ack) ++m_stats.bad_control;  // acknowledging what was never sent (counted once)
    p.bad_ack = seq;
    return;
  }
  p.acked = seq;
  ++m_stats.acks;
  m_history->ack(p.durable_name, seq);
}

void ShmPublisher::take_acks() {
  for (const auto slot : m_active) {
    Peer& p = m_peers[slot];
    if (p.acks) take_ack(slot, p);
  }
}

void ShmPublisher::linger_for_history() {
  // Subscriptions still catching up get the rest of their history first, as on tcp.
  const auto deadline = clock::now() + history_linger;
  while (m_catching_up > 0 && clock::now() < deadline) {
    const auto before = m_stats.replayed;
    refresh_roster();
    pump_history(history_per_service);
    if (m_ack_peers > 0) take_acks();
    if (clock::now() >= m_next_liveness) check_liveness();
    if (m_stats.replayed == before) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  if (m_ack_peers > 0) take_acks();
}

void ShmPublisher::push_copy(std::uint32_t slot, Peer& p, std::uint32_t index, std::span<const std::byte> env,
                             std::uint64_t seq) {
  const auto mask = m_map->ring_capacity() - 1;
  auto* h = m_map->chunk(index);
  std::memcpy(reinterpret_cast<std::byte*>(h) + chunk_header_bytes, env.data(), env.size());
  h->data_offset = chunk_header_bytes;
  h->data_size = static_cast<std::uint32_t>(env.size());
  h->sequence = seq;
  h->holders.store(1ull << slot, std::memory_order_release);  // the publisher's own bit goes
  if (p.kind == PolicyKind::buffer) {
    p.sizes[p.head & mask] = static_cast<std::uint32_t>(env.size());
    p.queued_bytes += env.size();
  }
  m_map->ring(slot)[p.head & mask].store(make_entry(p.head, index), std::memory_order_release);
  ++p.head;
}

}  // namespace rill::detail::shm
