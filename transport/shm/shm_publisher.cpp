#include "shm_publisher.hpp"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <thread>

#include "base/logging.hpp"
#include "shm_futex.hpp"

namespace rill::detail::shm {

namespace {

using clock = std::chrono::steady_clock;

constexpr auto liveness_period = std::chrono::milliseconds(100);
constexpr auto blocked_liveness_period = std::chrono::milliseconds(5);
constexpr unsigned sends_per_clock_look = 1024;
constexpr int spins_before_sleep = 2000;

inline void cpu_relax() noexcept {
  __builtin_ia32_pause();
}

}  // namespace

Result<std::unique_ptr<PublisherTransport>> ShmPublisher::create(NodeCore& node, const Endpoint& ep,
                                                                 const PublisherConfig& config) {
  auto options = parse_shm_options(ep);
  if (!options) return std::unexpected(options.error());
  if (config.topic.size() > max_topic_bytes) return fail(Errc::invalid_argument, "shm topics are at most 256 bytes");
  auto endpoint = ShmEndpoint::open(node, *options);
  if (!endpoint) return std::unexpected(endpoint.error());
  auto map = Mapping::create(*options, config.publisher_id, config.topic);
  if (!map) return std::unexpected(map.error());
  log().info("shm://{}: segment for '{}' created ({} MiB, {} slots, ring {}, {} chunks)", options->name, config.topic,
             (*map)->size() >> 20, (*map)->slot_count(), (*map)->ring_capacity(), (*map)->chunk_count());
  std::unique_ptr<ShmPublisher> pub(new ShmPublisher(*endpoint, *map, *options, config));
  // Subscriptions already on the endpoint get their slots before the channel is listed
  // (and so before the first message); one registering meanwhile claims a slot itself.
  pub->preclaim(pub->m_endpoint->registered_for(config.topic));
  auto entry = pub->m_endpoint->add_channel(config.publisher_id, config.topic);
  if (!entry) return std::unexpected(entry.error());
  pub->m_channel = *entry;
  return std::unique_ptr<PublisherTransport>(std::move(pub));
}

ShmPublisher::ShmPublisher(std::shared_ptr<ShmEndpoint> endpoint, Mapping* map, const ShmOptions& options,
                           const PublisherConfig& config)
    : m_endpoint(std::move(endpoint)),
      m_map(map),
      m_options(options),
      m_config(config),
      m_peers(map->slot_count()),
      m_cursor(map->class_count(), 0),
      m_warm(map->class_count()),
      m_history(config.history) {
  if (m_history) m_next_seq = m_history->next_sequence();  // persistent: continues from the log
  for (std::uint32_t c = 0; c < map->class_count(); ++c) {
    m_warm[c].slots.resize(std::min<std::uint32_t>(map->pool(c).count, 4096));
  }
  m_active.reserve(max_slots);
  m_next_liveness = clock::now() + liveness_period;
}

ShmPublisher::~ShmPublisher() {
  if (!m_closed) close(m_next_seq - 1);
  m_map->release();
}

// ---- chunks -------------------------------------------------------------------

std::optional<std::uint32_t> ShmPublisher::scan_class(std::uint32_t c) {
  const auto& pc = m_map->pool(c);
  std::uint32_t i = m_cursor[c];
  for (std::uint32_t k = 0; k < pc.count; ++k, ++i) {
    if (i >= pc.count) i = 0;
    auto* h = m_map->chunk(pc.first_index + i);
    if (h->holders.load(std::memory_order_acquire) == 0) {
      h->holders.store(publisher_holds, std::memory_order_relaxed);
      m_cursor[c] = i + 1;
      return pc.first_index + i;
    }
  }
  return std::nullopt;
}

bool ShmPublisher::reclaim_under_pressure() {
  // Every chunk of the class is held. Drop subscribers give up their oldest queued
  // message (counted as a policy drop, as if their queue were shorter); backpressure
  // subscribers and samples that applications hold are waited for instead.
  bool any = false;
  const std::vector<std::uint32_t> active = m_active;  // a bad tail evicts its slot meanwhile
  for (auto slot : active) {
    Peer& p = m_peers[slot];
    // A catching-up ring holds history, which is paced by the ring, never dropped.
    // A durable group's ring is never shed either: the member's acks would cover the hole.
    if (p.kind == PolicyKind::backpressure || !p.active || p.cursor || durable_member(p)) continue;
    const auto t = tail_of(slot, p);
    if (t && p.head > *t && pop_oldest(slot, p, *t)) any = true;
  }
  return any;
}

Result<std::uint32_t> ShmPublisher::allocate(std::size_t bytes, std::chrono::nanoseconds timeout, bool may_reclaim) {
  std::uint32_t first = 0;
  while (first < m_map->class_count() && m_map->pool(first).chunk_bytes - chunk_header_bytes < bytes) ++first;
  if (first == m_map->class_count()) {
    return fail(Errc::too_large, "message of " + std::to_string(bytes) + " bytes is larger than the biggest shm chunk");
  }
  if (auto& w = m_warm[first]; w.count > 0) {
    const auto oldest = w.slots[w.head];
    auto* h = m_map->chunk(oldest);
    const bool free = h->holders.load(std::memory_order_acquire) == 0;
    if (free || w.count == w.slots.size()) {  // a held one leaves the list; a scan finds it later
      w.head = (w.head + 1) % w.slots.size();
      --w.count;
    }
    if (free) {
      h->holders.store(publisher_holds, std::memory_order_relaxed);
      return oldest;
    }
  }
  clock::time_point deadline{};
  for (int round = 0;; ++round) {
    for (auto c = first; c < m_map->class_count(); ++c) {
      if (auto idx = scan_class(c)) return *idx;
    }
    if (may_reclaim && reclaim_under_pressure()) continue;
    const auto now = clock::now();
    if (round == 0) deadline = now + timeout;
    if (now >= deadline) {
      return fail(Errc::exhausted, "every shm chunk of " + std::to_string(bytes) +
                                       "+ bytes is held (by samples applications keep, or backpressure queues)");
    }
    refresh_roster();
    if (now >= m_next_liveness) check_liveness();
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

Result<LoanedChunk> ShmPublisher::loan(std::size_t bytes) {
  if (m_closed) return fail(Errc::closed, "publisher closed");
  auto idx = allocate(bytes, m_config.publish_timeout);
  if (!idx) return std::unexpected(idx.error());
  auto* h = m_map->chunk(*idx);
  return LoanedChunk{.data = reinterpret_cast<std::byte*>(h) + chunk_header_bytes,
                     .capacity = m_map->chunk_data_bytes(*idx),
                     .handle = *idx};
}

void ShmPublisher::unloan(std::uint32_t handle) noexcept {
  if (auto* h = m_map->chunk(handle)) h->holders.fetch_and(~publisher_holds, std::memory_order_release);
}

Result<void> ShmPublisher::send(std::span<const std::byte> envelope, std::uint64_t seq,
                                std::chrono::nanoseconds timeout) {
  if (m_closed) return fail(Errc::closed, "publisher closed");
  auto idx = allocate(envelope.size(), timeout);
  if (!idx) return std::unexpected(idx.error());
  auto* h = m_map->chunk(*idx);
  std::memcpy(reinterpret_cast<std::byte*>(h) + chunk_header_bytes, envelope.data(), envelope.size());
  return publish_chunk(*idx, chunk_header_bytes, static_cast<std::uint32_t>(envelope.size()), seq, timeout);
}

Result<void> ShmPublisher::send_loan(std::uint32_t handle, std::span<const std::byte> envelope, std::uint64_t seq,
                                     std::chrono::nanoseconds timeout) {
  auto* h = m_map->chunk(handle);
  const auto* base = reinterpret_cast<const std::byte*>(h);
  if (h == nullptr || envelope.data() < base + chunk_header_bytes ||
      envelope.data() + envelope.size() > base + chunk_header_bytes + m_map->chunk_data_bytes(handle) ||
      (envelope.data() - base) % 8 != 0) {
    unloan(handle);
    return fail(Errc::invalid_argument, "envelope does not lie 8-aligned inside its loan");
  }
  if (m_closed) {
    unloan(handle);
    return fail(Errc::closed, "publisher closed");
  }
  return publish_chunk(handle, static_cast<std::uint32_t>(envelope.data() - base),
                       static_cast<std::uint32_t>(envelope.size()), seq, timeout);
}

std::uint32_t ShmPublisher::class_of(std::uint32_t index) const noexcept {
  std::uint32_t c = 0;
  while (c + 1 < m_map->class_count() && index >= m_map->pool(c + 1).first_index) ++c;
  return c;
}

// ---- fan-out ------------------------------------------------------------------

void ShmPublisher::count_drop(std::uint32_t slot, Peer&) {
  auto& d = m_map->slot(slot).dropped;
  d.store(d.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);  // only we write it
  ++m_stats.peer_drops;
}

bool ShmPublisher::pop_oldest(std::uint32_t slot, Peer& p, std::uint64_t t, std::uint64_t n) {
  // Winning this CAS makes entries t .. t+n-1 ours (the subscriber did not take them):
  // their holder bits are released here, and the subscriber will see the sequence gap.
  auto& s = m_map->slot(slot);
  n = std::min(n, p.head - t);
  if (n == 0 || !s.tail.compare_exchange_strong(t, t + n, std::memory_order_acq_rel)) return false;
  const auto mask = m_map->ring_capacity() - 1;
  for (std::uint64_t k = t; k < t + n; ++k) {
    const auto entry = m_map->ring(slot)[k & mask].load(std::memory_order_relaxed);
    if (auto* h = m_map->chunk(entry_chunk(entry))) h->holders.fetch_and(~(1ull << slot), std::memory_order_release);
    if (p.kind == PolicyKind::buffer) p.queued_bytes -= p.sizes[k & mask];
    count_drop(slot, p);
  }
  if (p.kind == PolicyKind::buffer) p.tail_seen = t + n;
  return true;
}

std::optional<std::uint64_t> ShmPublisher::tail_of(std::uint32_t slot, Peer& p) {
  // Only a subscriber (or a publisher dropping oldest) moves the tail, forward, and never
  // past what was written: anything else was scribbled by a misbehaving process, and
  // looping on it could hang the publisher. Such a slot is dropped like a dead one.
  const auto t = m_map->slot(slot).tail.load(std::memory_order_acquire);
  const auto floor = std::max(p.tail_seen, p.head >= m_map->ring_capacity() ? p.head - m_map->ring_capacity() : 0);
  if (t <= p.head && t >= floor) return t;
  evict(slot, "wrote an impossible ring tail");
  return std::nullopt;
}

bool ShmPublisher::make_room_oldest(std::uint32_t slot, Peer& p) {
  for (;;) {
    const auto t = tail_of(slot, p);
    if (!t) return false;
    if (p.head - *t < p.capacity) return true;
    // A full ring sheds its oldest eighth at once (one message for queues under 16):
    // moving the tail once per many messages, not per message, leaves the subscriber's
    // own CAS on it mostly uncontended, so a slow reader still gets through.
    pop_oldest(slot, p, *t, std::clamp<std::uint64_t>(p.capacity / 8, 1, 64));  // losing: the subscriber made room
  }
}

bool ShmPublisher::sync_buffer_tail(std::uint32_t slot, Peer& p) {
  const auto t = tail_of(slot, p);
  if (!t) return false;
  const auto mask = m_map->ring_capacity() - 1;
  for (; p.tail_seen < *t; ++p.tail_seen) p.queued_bytes -= p.sizes[p.tail_seen & mask];
  return true;
}

bool ShmPublisher::make_room_buffer(std::uint32_t slot, Peer& p, std::uint32_t size) {
  if (!sync_buffer_tail(slot, p)) return false;
  if (p.head - p.tail_seen < p.capacity && p.queued_bytes + size <= p.byte_limit) return true;
  if (!p.overflowed) {
    p.overflowed = true;
    m_map->slot(slot).overflowed.store(1, std::memory_order_release);
  }
  if (size > p.byte_limit) return false;  // alone larger than the whole buffer
  while (p.head - p.tail_seen >= p.capacity || p.queued_bytes + size > p.byte_limit) {
    if (!pop_oldest(slot, p, p.tail_seen) && !sync_buffer_tail(slot, p)) return false;
  }
  return true;
}

Result<void> ShmPublisher::wait_for_room(std::chrono::nanoseconds timeout) {
  auto& hdr = m_map->header();
  clock::time_point start{}, deadline{}, next_look{};
  int spins = 0;
  for (;;) {
    // The first backpressure subscriber without room; looked up afresh each round
    // because a departure or death changes the set.
    std::uint32_t blocker = max_slots;
    const std::size_t count = m_active.size();
    std::uint32_t active[max_slots];
    std::copy(m_active.begin(), m_active.end(), active);  // a bad tail evicts its slot meanwhile
    for (std::size_t k = 0; k < count; ++k) {
      Peer& p = m_peers[active[k]];
      // History waits for room itself; a group member holds publish() only as its group does.
      if (p.kind != PolicyKind::backpressure || !p.active || p.cursor || p.group >= 0) continue;
      const auto t = tail_of(active[k], p);
      if (t && p.head - *t >= p.capacity) {
        blocker = active[k];
        break;
      }
    }
    if (blocker == max_slots && !m_groups.empty()) blocker = group_blocker();
    if (blocker == max_slots) break;
    if (start == clock::time_point{}) {
      start = clock::now();
      deadline = start + timeout;
      next_look = start + blocked_liveness_period;
    }
    if (spins++ < spins_before_sleep) {
      cpu_relax();
      continue;
    }
    const Peer& p = m_peers[blocker];
    auto& s = m_map->slot(blocker);
    const auto now = clock::now();
    m_stats.last_blocker = p.subscription_id;
    if (now >= deadline) {
      ++m_stats.timeouts;
      m_stats.blocked_ns += static_cast<std::uint64_t>((now - start).count());
      return fail(Errc::timed_out, "backpressure: subscription window full past the deadline");
    }
    if (now >= next_look) {
      // A dead or departed subscriber must not hold the publisher to its deadline.
      next_look = now + blocked_liveness_period;
      refresh_roster();
      check_liveness();
      continue;
    }
    hdr.pub_waiting.store(1, std::memory_order_seq_cst);
    const auto w = hdr.pub_wake.load(std::memory_order_seq_cst);
    if (p.head - s.tail.load(std::memory_order_seq_cst) >= p.capacity) {
      futex_wait(hdr.pub_wake, w, std::min<std::chrono::nanoseconds>(deadline - now, std::chrono::milliseconds(1)));
    }
    hdr.pub_waiting.store(0, std::memory_order_relaxed);
  }
  if (start != clock::time_point{}) m_stats.blocked_ns += static_cast<std::uint64_t>((clock::now() - start).count());
  return {};
}

Result<void> ShmPublisher::publish_chunk(std::uint32_t index, std::uint32_t offset, std::uint32_t size,
                                         std::uint64_t seq, std::chrono::nanoseconds timeout) {
  auto* h = m_map->chunk(index);
  h->data_offset = offset;
  h->data_size = size;
  h->sequence = seq;
  // Everything before `seq` is in the history (a durable publisher keeps a message
  // before sending it, and counts it published even when its send failed).
  m_next_seq = seq;
  refresh_roster();
  // Catching-up subscriptions are sent history (up to seq - 1) before this message is
  // fanned out: one that reaches seq here is sent seq live, so the seam has no gap.
  if (m_catching_up > 0) pump_history(history_per_publish);
  if (!m_groups.empty()) pump_groups(history_per_publish);
  if (m_backpressure_peers > 0) {
    if (auto room = wait_for_room(timeout); !room) {
      unloan(index);
      return room;
    }
  }
  // Decide per slot first; the holder bits must be set before any entry is visible.
  std::uint32_t targets[max_slots];
  std::size_t n = 0;
  std::uint64_t holders = 0;
  const std::size_t count = m_active.size();
  std::uint32_t active[max_slots];
  std::copy(m_active.begin(), m_active.end(), active);  // a bad tail evicts its slot meanwhile
  for (std::size_t k = 0; k < count; ++k) {
    const auto slot = active[k];
    Peer& p = m_peers[slot];
    // Catching up: it gets seq from the history. A group member: from route_to_groups.
    if (!p.active || p.cursor || p.group >= 0) continue;
    bool deliver = true;
    switch (p.kind) {
      case PolicyKind::drop_oldest:
        deliver = make_room_oldest(slot, p);
        break;
      case PolicyKind::drop_newest: {
        const auto t = tail_of(slot, p);
        deliver = t && p.head - *t < p.capacity;
        break;
      }
      case PolicyKind::buffer:
        deliver = make_room_buffer(slot, p, size);
        break;
      case PolicyKind::backpressure:
        break;  // wait_for_room made room
    }
    if (!deliver) {
      if (p.active) count_drop(slot, p);
      continue;
    }
    targets[n++] = slot;
    holders |= 1ull << slot;
  }
  if (!m_groups.empty()) route_to_groups(seq, size, targets, n, holders);
  h->holders.store(holders, std::memory_order_release);
  const auto mask = m_map->ring_capacity() - 1;
  for (std::size_t i = 0; i < n; ++i) {
    Peer& p = m_peers[targets[i]];
    if (p.kind == PolicyKind::buffer) {
      p.sizes[p.head & mask] = size;
      p.queued_bytes += size;
    }
    m_map->ring(targets[i])[p.head & mask].store(make_entry(p.head, index), std::memory_order_release);
    ++p.head;
  }
  auto& hdr = m_map->header();
  hdr.last_seq.store(seq, std::memory_order_relaxed);
  hdr.next_seq.store(seq + 1, std::memory_order_relaxed);
  m_next_seq = seq + 1;
  if (auto& w = m_warm[class_of(index)]; w.count < w.slots.size()) {
    w.slots[(w.head + w.count++) % w.slots.size()] = index;
  }
  ++m_stats.sent;
  // Pairs with the subscriber's fence between raising `sleeping` and looking at its
  // ring: either it sees the entry, or we see it asleep and wake it. (ThreadSanitizer
  // does not model fences, so the TSan run cannot check this handshake; the fence-fence
  // rule of the C++ memory model is what makes it correct.)
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (std::size_t i = 0; i < n; ++i) {
    auto& s = m_map->slot(targets[i]);
    if (s.sleeping.load(std::memory_order_relaxed) != 0) {
      s.wake.fetch_add(1, std::memory_order_release);
      futex_wake(s.wake, 1);
    }
  }
  if (m_ack_peers > 0) take_acks();
  if (++m_sends_since_look >= sends_per_clock_look) {
    m_sends_since_look = 0;
    if (clock::now() >= m_next_liveness) check_liveness();
  }
  return {};
}

std::size_t ShmPublisher::service() {
  refresh_roster();
  if (m_catching_up > 0) pump_history(history_per_service);
  if (!m_groups.empty()) pump_groups(history_per_service);
  if (m_ack_peers > 0) take_acks();
  if (clock::now() >= m_next_liveness) check_liveness();
  return m_active.size();
}

Result<std::size_t> ShmPublisher::wait_for_subscribers(std::size_t n, clock::time_point deadline) {
  for (;;) {
    if (service() >= n) return m_active.size();
    if (clock::now() >= deadline)
      return fail(Errc::timed_out, "fewer than " + std::to_string(n) + " subscribers attached");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

Result<void> ShmPublisher::reserve(std::chrono::nanoseconds timeout) {
  // A durable publisher keeps a message only once it can be sent: the same wait as
  // publish_chunk's, taken before the message is recorded.
  if (m_closed) return fail(Errc::closed, "publisher closed");
  refresh_roster();
  if (m_catching_up > 0) pump_history(history_per_publish);
  if (!m_groups.empty()) pump_groups(history_per_publish);
  if (m_backpressure_peers > 0) return wait_for_room(timeout);
  return {};
}

void ShmPublisher::close(std::uint64_t last_seq) {
  if (m_closed) return;
  linger_for_history();
  m_closed = true;
  auto& hdr = m_map->header();
  hdr.last_seq.store(last_seq, std::memory_order_relaxed);
  hdr.state.store(static_cast<std::uint32_t>(SegmentState::closed), std::memory_order_release);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (std::uint32_t i = 0; i < m_map->slot_count(); ++i) {
    auto& s = m_map->slot(i);
    s.wake.fetch_add(1, std::memory_order_release);
    futex_wake(s.wake, INT_MAX);
  }
  // The channel ends after the segment says so: a subscriber that finds it in the
  // directory meanwhile sees a closed segment and leaves it alone.
  if (m_channel != ~0u) m_endpoint->end_channel(m_channel);
  unlink_if_ours(*m_map, m_options.name);
}

}  // namespace rill::detail::shm
