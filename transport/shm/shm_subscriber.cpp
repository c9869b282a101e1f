#include "shm_subscriber.hpp"

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

constexpr auto attach_retry = std::chrono::milliseconds(100);
// A refused subscription asks again now and then (the publisher may be restarted with
// more durability), not at the pace of a missing publisher.
constexpr auto rejected_retry = std::chrono::seconds(1);
constexpr auto publisher_liveness_period = std::chrono::milliseconds(100);

// A Frame holding one chunk: the holder bit is cleared and the mapping released when
// the last owner (queue, handler, or a Sample the application kept) lets go.
struct Held {
  Mapping* map;
  ChunkHeader* chunk;
  std::uint64_t bit;
  const std::byte* data;
  std::size_t size;
};

Held* held(void* s) noexcept {
  return static_cast<Held*>(s);
}

const FrameOps chunk_frame_ops{
    .release =
        [](void* s) noexcept {
          held(s)->chunk->holders.fetch_and(~held(s)->bit, std::memory_order_release);
          held(s)->map->release();
        },
    .move = nullptr,  // plain pointers: relocatable
    .bytes =
        [](const void* s) noexcept {
          return std::span<const std::byte>(held(const_cast<void*>(s))->data, held(const_cast<void*>(s))->size);
        },
};

static_assert(sizeof(Held) <= Frame::storage_size);

}  // namespace

Result<std::unique_ptr<SubscriberTransport>> ShmSubscriber::create(std::span<const Endpoint> eps,
                                                                   const SubscriberConfig& config) {
  if (config.group.size() > max_group_name_bytes) {
    return fail(Errc::invalid_argument,
                "a consumer group name over shm is at most " + std::to_string(max_group_name_bytes) + " bytes");
  }
  std::unique_ptr<ShmSubscriber> sub(new ShmSubscriber(config));
  sub->m_pid = static_cast<std::uint32_t>(::getpid());
  sub->m_start = process_start_time(::getpid()).value_or(0);
  for (const auto& ep : eps) {
    auto options = parse_shm_options(ep);
    if (!options) return std::unexpected(options.error());
    Conn c;
    c.options = std::move(*options);
    sub->m_conns.push_back(std::move(c));
  }
  sub->m_trusted = std::none_of(sub->m_conns.begin(), sub->m_conns.end(), [](const Conn& c) { return c.options.verify; });
  // Attach now where a publisher exists; a missing one is retried (as tcp reconnects),
  // but no access at all is the caller's error, said at once.
  const auto now = clock::now();
  for (auto& c : sub->m_conns) {
    sub->attach(c, now);
    if (c.map == nullptr && c.last_error.starts_with("permission_denied")) {
      return fail(Errc::permission_denied, c.last_error.substr(c.last_error.find(':') + 2));
    }
  }
  return std::unique_ptr<SubscriberTransport>(std::move(sub));
}

ShmSubscriber::~ShmSubscriber() {
  for (auto& c : m_conns) detach(c);
}

void ShmSubscriber::attach(Conn& c, clock::time_point now) {
  c.next_attempt = now + attach_retry;
  auto report = [&](const Error& e) {
    const auto text = e.message();
    if (text != c.last_error && e.code != Errc::not_connected) {
      log().warn("subscription {:016x}: shm://{}: {}", m_config.subscription_id, c.options.name, text);
    }
    c.last_error = text;
  };
  auto opened = Mapping::open(c.options);
  if (!opened) return report(opened.error());
  Mapping* map = *opened;
  auto& hdr = map->header();
  // A closed segment or one whose publisher died is waiting for its successor.
  if (hdr.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(SegmentState::live) ||
      !process_alive(map->publisher_pid(), map->publisher_start())) {
    map->release();
    return report(Error{Errc::not_connected, 0, "stale segment"});
  }
  if (!map->topic().starts_with(m_config.prefix)) {
    map->release();
    return report(Error{Errc::incompatible, 0,
                        "publisher's topic '" + map->topic() + "' does not match prefix '" + m_config.prefix + "'"});
  }
  std::uint32_t slot = 0;
  for (; slot < map->slot_count(); ++slot) {
    std::uint64_t expected = 0;
    if (map->slot(slot).owner.compare_exchange_strong(expected, make_owner(m_pid, SlotState::claiming),
                                                      std::memory_order_acq_rel)) {
      break;
    }
  }
  if (slot == map->slot_count()) {
    map->release();
    return report(
        Error{Errc::exhausted, 0, "all " + std::to_string(map->slot_count()) + " subscriber slots are taken"});
  }
  auto& s = map->slot(slot);
  const auto& policy = m_config.policy;
  if (policy.kind != PolicyKind::buffer && policy.capacity > map->ring_capacity()) {
    log().warn("subscription {:016x}: shm://{} rings hold {} messages; the policy's {} is cut to that",
               m_config.subscription_id, c.options.name, map->ring_capacity(), policy.capacity);
  }
  s.owner_start = m_start;
  s.subscription_id = m_config.subscription_id;
  s.policy_kind = static_cast<std::uint32_t>(policy.kind);
  s.policy_capacity = policy.capacity;
  s.sleeping.store(0, std::memory_order_relaxed);
  s.tail.store(0, std::memory_order_relaxed);
  s.joined.store(0, std::memory_order_relaxed);
  s.dropped.store(0, std::memory_order_relaxed);
  s.overflowed.store(0, std::memory_order_relaxed);
  s.rejected.store(0, std::memory_order_relaxed);
  s.lost.store(0, std::memory_order_relaxed);
  s.offered.store(0, std::memory_order_relaxed);
  s.acked.store(0, std::memory_order_relaxed);
  s.durability = static_cast<std::uint32_t>(m_config.durability.kind);
  s.start_from = static_cast<std::uint32_t>(m_config.from);
  s.history = m_config.durability.history;
  const auto name_bytes = std::min<std::size_t>(m_config.durable_name.size(), max_durable_name_bytes);
  std::memset(s.durable_name, 0, sizeof s.durable_name);
  std::memcpy(s.durable_name, m_config.durable_name.data(), name_bytes);
  s.durable_name_bytes = static_cast<std::uint32_t>(name_bytes);
  std::memset(s.group, 0, sizeof s.group);
  std::memcpy(s.group, m_config.group.data(), m_config.group.size());  // create() checked its length
  s.group_bytes = static_cast<std::uint32_t>(m_config.group.size());
  // Entries a previous occupant left behind could name positions we are about to read.
  auto* ring = map->ring(slot);
  for (std::uint32_t i = 0; i < map->ring_capacity(); ++i) ring[i].store(0, std::memory_order_relaxed);
  s.owner.store(make_owner(m_pid, SlotState::active), std::memory_order_release);
  hdr.roster.fetch_add(1, std::memory_order_acq_rel);
  c.map = map;
  c.slot = slot;
  c.tail = 0;
  c.batch_pos = c.batch_len = 0;
  // Up to a quarter of the queue is taken per CAS (1 for small queues: they stay exact).
  c.batch_max = static_cast<std::uint32_t>(std::clamp<std::uint64_t>(
      (policy.kind == PolicyKind::buffer ? map->ring_capacity() : std::min<std::uint64_t>(policy.capacity, map->ring_capacity())) / 4,
      1, std::size(c.batch)));
  c.welcomed = false;
  c.publisher_dead = false;
  c.overflowed = false;
  c.next_liveness = now + publisher_liveness_period;
  c.last_error.clear();
  log().info("subscription {:016x}: attached to shm://{} (publisher {:016x}, slot {})", m_config.subscription_id,
             c.options.name, map->publisher_id(), slot);
}

void ShmSubscriber::detach(Conn& c) {
  if (c.map == nullptr) return;
  auto& s = c.map->slot(c.slot);
  // Entries taken but not handed over are ours to give back.
  for (; c.batch_pos < c.batch_len; ++c.batch_pos) {
    if (auto* h = c.map->chunk(c.batch[c.batch_pos])) h->holders.fetch_and(~(1ull << c.slot), std::memory_order_release);
  }
  c.dropped_before += s.dropped.load(std::memory_order_relaxed);
  // The publisher drains what is left in the ring and frees the slot once the samples
  // still held here are released (or this process is gone).
  s.owner.store(make_owner(m_pid, SlotState::leaving), std::memory_order_release);
  c.map->header().roster.fetch_add(1, std::memory_order_acq_rel);
  c.map->release();
  c.map = nullptr;
}

bool ShmSubscriber::has_entry(const Conn& c) const noexcept {
  const auto mask = c.map->ring_capacity() - 1;
  return c.batch_pos < c.batch_len || entry_is(c.map->ring(c.slot)[c.tail & mask].load(std::memory_order_acquire), c.tail) ||
         c.map->slot(c.slot).tail.load(std::memory_order_relaxed) != c.tail;
}

bool ShmSubscriber::end_of_publisher(std::uint32_t index, FrameSink& sink) {
  // The ring is empty. A closed segment (or a dead publisher's) has nothing more to come.
  Conn& c = m_conns[index];
  auto& hdr = c.map->header();
  const bool closed = hdr.state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(SegmentState::closed);
  if (!closed && !c.publisher_dead) return false;
  if (has_entry(c)) return false;  // entries written just before the close
  const auto last = hdr.last_seq.load(std::memory_order_acquire);
  if (closed) {
    sink.on_bye(index, c.map->publisher_id(), last);
  } else {
    log().warn("subscription {:016x}: publisher {:016x} of shm://{} (pid {}) died after sequence {}",
               m_config.subscription_id, c.map->publisher_id(), c.options.name, c.map->publisher_pid(), last);
    sink.on_lost(index, c.map->publisher_id(), last);
  }
  detach(c);
  return true;
}

bool ShmSubscriber::refill(Conn& c) {
  // Takes every ready entry up to batch_max with one CAS on the tail, so the tail's cache
  // line moves between the cores once per batch rather than once per message.
  auto& s = c.map->slot(c.slot);
  auto* ring = c.map->ring(c.slot);
  const auto mask = c.map->ring_capacity() - 1;
  // Bounded: a tail that keeps moving under us (a scribbling process) must not hold us.
  for (int attempt = 0; attempt < 64; ++attempt) {
    std::uint32_t k = 0;
    for (; k < c.batch_max; ++k) {
      const auto entry = ring[(c.tail + k) & mask].load(std::memory_order_acquire);
      if (!entry_is(entry, c.tail + k)) break;
      c.batch[k] = entry_chunk(entry);
      if (k == 0) {
        // Ask for the chunk's header and envelope lines together, not one after the other.
        if (const auto* h = reinterpret_cast<const char*>(c.map->chunk(c.batch[0]))) {
          for (int line = 0; line < 4; ++line) __builtin_prefetch(h + line * cache_line);
        }
      }
    }
    if (k == 0) {
      // Not written yet, or a drop-oldest publisher moved the tail past it.
      const auto t = s.tail.load(std::memory_order_acquire);
      if (t == c.tail) return false;
      c.tail = t;
      continue;
    }
    // Winning the CAS makes the entries and their holder bits ours; losing means the
    // publisher discarded the oldest meanwhile (c.tail now holds the new tail).
    if (!s.tail.compare_exchange_strong(c.tail, c.tail + k, std::memory_order_acq_rel)) continue;
    c.tail += k;
    c.batch_pos = 0;
    c.batch_len = k;
    if (m_config.policy.kind == PolicyKind::backpressure) {
      // Pairs with the publisher's fence between raising pub_waiting and re-reading tails.
      auto& hdr = c.map->header();
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (hdr.pub_waiting.load(std::memory_order_relaxed) != 0) {
        hdr.pub_wake.fetch_add(1, std::memory_order_release);
        futex_wake(hdr.pub_wake, INT_MAX);
      }
    }
    return true;
  }
  return false;
}

std::size_t ShmSubscriber::drain_conn(std::uint32_t index, FrameSink& sink, std::size_t max) {
  Conn& c = m_conns[index];
  if (c.map == nullptr) return 0;
  if (!c.welcomed && !greeted(index, sink)) return 0;
  const std::uint64_t bit = 1ull << c.slot;
  std::size_t n = 0;
  while (n < max) {
    if (c.batch_pos == c.batch_len && !refill(c)) {
      if (n == 0) end_of_publisher(index, sink);
      break;
    }
    const auto chunk = c.batch[c.batch_pos++];
    if (c.batch_pos < c.batch_len) {
      // The next chunk's header and first lines, fetched while this one is handled.
      const auto* next = reinterpret_cast<const char*>(c.map->chunk(c.batch[c.batch_pos]));
      if (next != nullptr) {
        for (int line = 0; line < 4; ++line) __builtin_prefetch(next + line * cache_line);
      }
    }
    const auto bytes = c.map->envelope_of(chunk);
    if (bytes.empty()) {
      if (auto* h = c.map->chunk(chunk)) h->holders.fetch_and(~bit, std::memory_order_release);
      sink.on_bad_frame(index, Errc::malformed, 0);
      continue;
    }
    Frame frame(&chunk_frame_ops, index);
    new (frame.storage()) Held{c.map, c.map->chunk(chunk), bit, bytes.data(), bytes.size()};
    c.map->retain();
    sink.on_data(std::move(frame));
    ++n;
  }
  return n;
}

bool ShmSubscriber::greeted(std::uint32_t index, FrameSink& sink) {
  // The publisher answers a claimed slot with `joined` (history starts there) or `rejected`.
  Conn& c = m_conns[index];
  auto& s = c.map->slot(c.slot);
  if (const auto why = s.rejected.load(std::memory_order_acquire); why != 0) {
    const auto offered = std::min<std::uint32_t>(s.offered.load(std::memory_order_relaxed),
                                                 static_cast<std::uint32_t>(DurabilityKind::persistent));
    const auto reason = why == static_cast<std::uint32_t>(RejectReason::durability)
                            ? "the publisher offers less durability than requested"
                            : "the publisher found this subscription's request malformed";
    sink.on_reject(index, c.map->publisher_id(), static_cast<DurabilityKind>(offered), m_config.durability.kind,
                   reason);
    detach(c);
    c.next_attempt = clock::now() + rejected_retry;
    return false;
  }
  const auto first = s.joined.load(std::memory_order_acquire);
  if (first == 0) return false;  // the publisher has not taken us in yet
  c.welcomed = true;
  sink.on_welcome(index, c.map->publisher_id(), first, s.lost.load(std::memory_order_relaxed), c.map->instance());
  return true;
}

bool ShmSubscriber::ack(std::uint32_t source, std::uint64_t publisher_id, std::uint64_t seq) {
  // The publisher reads the word at its next publish or service() and stores it. An ack
  // for a publisher we are not attached to is dropped: a new welcome makes the core ack again.
  if (source >= m_conns.size()) return true;
  Conn& c = m_conns[source];
  if (c.map == nullptr || !c.welcomed || c.map->publisher_id() != publisher_id) return true;
  auto& acked = c.map->slot(c.slot).acked;
  // A group member acks the last message it handled, in the order they were pushed to it:
  // that may be a lower sequence than the one before.
  const auto before = acked.load(std::memory_order_relaxed);
  if (m_config.group.empty() ? seq > before : seq != before) acked.store(seq, std::memory_order_release);
  return true;
}

std::size_t ShmSubscriber::drain(FrameSink& sink, std::size_t max) {
  std::size_t n = 0;
  const auto count = static_cast<std::uint32_t>(m_conns.size());
  for (std::uint32_t k = 0; k < count; ++k) {
    const auto index = (m_next_conn + k) % count;
    n += drain_conn(index, sink, max - n);  // max 0: greetings and departures only
    if (n >= max && max > 0) break;
  }
  if (count > 1) m_next_conn = (m_next_conn + 1) % count;
  return n;
}

void ShmSubscriber::wait(std::chrono::nanoseconds timeout) {
  WaitWord words[64];
  std::size_t n = 0;
  for (auto& c : m_conns) {
    if (c.map == nullptr || n == std::size(words)) continue;
    auto& s = c.map->slot(c.slot);
    s.sleeping.store(1, std::memory_order_seq_cst);
    words[n++] = {&s.wake, s.wake.load(std::memory_order_seq_cst)};
  }
  // Pairs with the publisher's fence after writing entries: either we see its entry
  // now, or it sees `sleeping` and bumps the word we sleep on.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  bool ready = n == 0;
  for (auto& c : m_conns) {
    if (c.map == nullptr) continue;
    const bool closed =
        c.map->header().state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(SegmentState::live);
    if (has_entry(c) || closed) ready = true;
  }
  if (!ready) futex_wait_any({words, n}, std::min<std::chrono::nanoseconds>(timeout, publisher_liveness_period));
  for (auto& c : m_conns) {
    if (c.map != nullptr) c.map->slot(c.slot).sleeping.store(0, std::memory_order_relaxed);
  }
  if (n == 0) std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(timeout, std::chrono::milliseconds(10)));
}

void ShmSubscriber::service(clock::time_point now) {
  for (auto& c : m_conns) {
    if (c.map == nullptr) {
      if (now >= c.next_attempt) attach(c, now);
      continue;
    }
    if (!c.publisher_dead && now >= c.next_liveness) {
      c.next_liveness = now + publisher_liveness_period;
      if (!process_alive(c.map->publisher_pid(), c.map->publisher_start())) c.publisher_dead = true;
    }
  }
}

std::uint64_t ShmSubscriber::policy_drops() const noexcept {
  std::uint64_t n = 0;
  for (const auto& c : m_conns) {
    n += c.dropped_before;
    if (c.map != nullptr) n += c.map->slot(c.slot).dropped.load(std::memory_order_relaxed);
  }
  return n;
}

bool ShmSubscriber::policy_overflowed() const noexcept {
  return std::any_of(m_conns.begin(), m_conns.end(), [](const Conn& c) {
    return c.map != nullptr && c.map->slot(c.slot).overflowed.load(std::memory_order_relaxed) != 0;
  });
}

}  // namespace rill::detail::shm
