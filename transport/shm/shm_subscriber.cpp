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
  if (config.prefix.size() > max_prefix_bytes) {
    return fail(Errc::invalid_argument, "a topic prefix over shm is at most " + std::to_string(max_prefix_bytes) + " bytes");
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
  // Attach now where the endpoint exists; a missing one is retried (as tcp reconnects),
  // but no access at all is the caller's error, said at once.
  const auto now = clock::now();
  for (auto& c : sub->m_conns) {
    sub->attach(c, now);
    if (c.dir == nullptr && c.last_error.starts_with("permission_denied")) {
      return fail(Errc::permission_denied, c.last_error.substr(c.last_error.find(':') + 2));
    }
  }
  return std::unique_ptr<SubscriberTransport>(std::move(sub));
}

ShmSubscriber::~ShmSubscriber() {
  for (auto& c : m_conns) {
    for (auto& ch : c.chans) detach_channel(c, ch);
    detach(c);
  }
}

void ShmSubscriber::report(Conn& c, const Error& e) {
  const auto text = e.message();
  if (text != c.last_error && e.code != Errc::not_connected) {
    log().warn("subscription {:016x}: shm://{}: {}", m_config.subscription_id, c.options.name, text);
  }
  c.last_error = text;
}

void ShmSubscriber::attach(Conn& c, time_point now) {
  // The endpoint's directory: register this subscription (publishers created from now on
  // pre-claim a slot for it), then attach to the channels already listed.
  c.next_attempt = now + attach_retry;
  auto opened = Directory::open(c.options);
  if (!opened) return report(c, opened.error());
  auto& dir = *opened;
  if (!dir->owner_alive()) return report(c, Error{Errc::not_connected, 0, "stale directory"});
  const auto want = make_entry_owner(m_pid, EntryState::claiming);
  for (std::uint32_t i = 0; i < dir->subscriber_count() && c.entry == ~0u; ++i) {
    auto& e = dir->subscriber(i);
    auto owner = e.owner.load(std::memory_order_acquire);
    // A free entry, or one whose process is gone (its subscriber died registered).
    if (owner != 0 && process_exists(static_cast<pid_t>(owner >> 8))) continue;
    if (e.owner.compare_exchange_strong(owner, want, std::memory_order_acq_rel)) c.entry = i;
  }
  if (c.entry == ~0u) {
    log().warn("subscription {:016x}: shm://{}: the directory's {} registry entries are taken; publishers created "
               "later reach this subscription only after it claims a slot in their segment",
               m_config.subscription_id, c.options.name, dir->subscriber_count());
  } else {
    write_subscriber(dir->subscriber(c.entry),
                     {.pid = m_pid,
                      .start = m_start,
                      .subscription_id = m_config.subscription_id,
                      .policy_kind = static_cast<std::uint32_t>(m_config.policy.kind),
                      .policy_capacity = m_config.policy.capacity,
                      .durability = static_cast<std::uint32_t>(m_config.durability.kind),
                      .start_from = static_cast<std::uint32_t>(m_config.from),
                      .history = m_config.durability.history,
                      .prefix = m_config.prefix,
                      .durable_name = m_config.durable_name.substr(0, max_durable_name_bytes),
                      .group = m_config.group});
  }
  c.dir = std::move(dir);
  c.gen = &c.dir->header().generation;
  c.next_liveness = now + publisher_liveness_period;
  c.last_error.clear();
  log().info("subscription {:016x}: attached to shm://{} (instance {:016x})", m_config.subscription_id,
             c.options.name, c.dir->instance());
  scan(c, now);
}

void ShmSubscriber::detach(Conn& c) {
  // Channels stay: each ends by its own segment's state or its publisher's death.
  if (c.dir == nullptr) return;
  if (c.entry != ~0u) c.dir->subscriber(c.entry).owner.store(0, std::memory_order_release);
  c.entry = ~0u;
  c.gen = nullptr;
  c.dir.reset();
}

void ShmSubscriber::scan(Conn& c, time_point now) {
  // Cheap enough to run whenever the generation moves: a pass over the channel table,
  // mapping only the new channels whose topic matches (others are never attached).
  c.gen_seen = c.gen->load(std::memory_order_acquire);
  c.rescan = false;
  for (std::uint32_t i = 0; i < c.dir->channel_count(); ++i) {
    const auto info = read_channel(c.dir->channel(i));
    if (!info || !info->topic.starts_with(m_config.prefix)) continue;
    if (std::any_of(c.chans.begin(), c.chans.end(),
                    [&](const Channel& ch) { return ch.publisher_id == info->publisher_id; })) {
      continue;
    }
    const auto refused = std::find_if(c.refused.begin(), c.refused.end(),
                                      [&](const auto& r) { return r.first == info->publisher_id; });
    if (refused != c.refused.end()) {
      if (now < refused->second) {
        c.rescan = true;
        continue;
      }
      c.refused.erase(refused);
    }
    if (!attach_channel(c, *info, now)) c.rescan = true;
  }
  if (c.rescan) c.next_attempt = now + attach_retry;
}

bool ShmSubscriber::attach_channel(Conn& c, const ChannelInfo& info, time_point now) {
  // Returns false when it is worth trying again later (no free slot yet).
  auto opened = Mapping::open(c.options, info.publisher_id);
  if (!opened) {
    report(c, opened.error());
    return opened.error().code != Errc::not_connected && opened.error().code != Errc::malformed &&
           opened.error().code != Errc::incompatible;  // gone already, or never worth reading
  }
  Mapping* map = *opened;
  if (map->publisher_id() != info.publisher_id || map->topic() != info.topic) {
    map->release();
    report(c, Error{Errc::malformed, 0, "segment of publisher " + std::to_string(info.publisher_id) +
                                            " does not match its directory entry"});
    return true;
  }
  // A closed segment or a dead publisher's has nothing more for us.
  if (map->header().state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(SegmentState::live) ||
      !process_alive(map->publisher_pid(), map->publisher_start())) {
    map->release();
    return true;
  }
  // A slot the publisher pre-claimed for this subscription (it was registered when the
  // publisher was created), holding its messages from the first; else a free one.
  std::uint32_t slot = 0;
  bool adopted = false;
  for (; slot < map->slot_count(); ++slot) {
    auto& s = map->slot(slot);
    const auto owner = s.owner.load(std::memory_order_acquire);
    if (owner == make_owner(m_pid, SlotState::active) && s.preclaimed.load(std::memory_order_acquire) != 0 &&
        s.subscription_id == m_config.subscription_id) {
      adopted = true;
      break;
    }
  }
  if (!adopted) {
    for (slot = 0; slot < map->slot_count(); ++slot) {
      std::uint64_t expected = 0;
      if (map->slot(slot).owner.compare_exchange_strong(expected, make_owner(m_pid, SlotState::claiming),
                                                        std::memory_order_acq_rel)) {
        break;
      }
    }
  }
  if (slot == map->slot_count()) {
    map->release();
    report(c, Error{Errc::exhausted, 0, "all " + std::to_string(map->slot_count()) + " subscriber slots of '" +
                                            info.topic + "' are taken"});
    return false;
  }
  auto& s = map->slot(slot);
  const auto& policy = m_config.policy;
  if (policy.kind != PolicyKind::buffer && policy.capacity > map->ring_capacity()) {
    log().warn("subscription {:016x}: shm://{} rings hold {} messages; the policy's {} is cut to that",
               m_config.subscription_id, c.options.name, map->ring_capacity(), policy.capacity);
  }
  if (adopted) {
    s.sleeping.store(0, std::memory_order_relaxed);
    s.preclaimed.store(0, std::memory_order_release);
  } else {
    s.owner_start = m_start;
    s.subscription_id = m_config.subscription_id;
    s.policy_kind = static_cast<std::uint32_t>(policy.kind);
    s.policy_capacity = policy.capacity;
    s.sleeping.store(0, std::memory_order_relaxed);
    s.preclaimed.store(0, std::memory_order_relaxed);
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
    map->header().roster.fetch_add(1, std::memory_order_acq_rel);
  }
  Channel ch;
  ch.map = map;
  ch.publisher_id = info.publisher_id;
  ch.instance = c.dir->instance();
  ch.slot = slot;
  ch.tail = s.tail.load(std::memory_order_acquire);  // a pre-claimed drop-oldest slot may have moved on
  // Up to a quarter of the queue is taken per CAS (1 for small queues: they stay exact).
  ch.batch_max = static_cast<std::uint32_t>(std::clamp<std::uint64_t>(
      (policy.kind == PolicyKind::buffer ? map->ring_capacity()
                                         : std::min<std::uint64_t>(policy.capacity, map->ring_capacity())) /
          4,
      1, std::size(ch.batch)));
  ch.next_liveness = now + publisher_liveness_period;
  c.chans.push_back(ch);
  log().info("subscription {:016x}: shm://{}: {} '{}' (publisher {:016x}, slot {})", m_config.subscription_id,
             c.options.name, adopted ? "took its pre-claimed slot for" : "attached to", info.topic,
             info.publisher_id, slot);
  return true;
}

void ShmSubscriber::detach_channel(Conn& c, Channel& ch) {
  if (ch.map == nullptr) return;
  auto& s = ch.map->slot(ch.slot);
  // Entries taken but not handed over are ours to give back.
  for (; ch.batch_pos < ch.batch_len; ++ch.batch_pos) {
    if (auto* h = ch.map->chunk(ch.batch[ch.batch_pos])) h->holders.fetch_and(~(1ull << ch.slot), std::memory_order_release);
  }
  c.dropped_before += s.dropped.load(std::memory_order_relaxed);
  // The publisher drains what is left in the ring and frees the slot once the samples
  // still held here are released (or this process is gone).
  s.owner.store(make_owner(m_pid, SlotState::leaving), std::memory_order_release);
  ch.map->header().roster.fetch_add(1, std::memory_order_acq_rel);
  ch.map->release();
  ch.map = nullptr;
}

bool ShmSubscriber::has_entry(const Channel& c) const noexcept {
  const auto mask = c.map->ring_capacity() - 1;
  return c.batch_pos < c.batch_len || entry_is(c.map->ring(c.slot)[c.tail & mask].load(std::memory_order_acquire), c.tail) ||
         c.map->slot(c.slot).tail.load(std::memory_order_relaxed) != c.tail;
}

bool ShmSubscriber::end_of_publisher(std::uint32_t index, Conn& c, Channel& ch, FrameSink& sink) {
  // The ring is empty. A closed segment (or a dead publisher's) has nothing more to come.
  auto& hdr = ch.map->header();
  const bool closed = hdr.state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(SegmentState::closed);
  if (!closed && !ch.publisher_dead) return false;
  if (has_entry(ch)) return false;  // entries written just before the close
  const auto last = hdr.last_seq.load(std::memory_order_acquire);
  if (closed) {
    sink.on_bye(index, ch.publisher_id, last);
  } else {
    log().warn("subscription {:016x}: publisher {:016x} of shm://{} (pid {}) died after sequence {}",
               m_config.subscription_id, ch.publisher_id, c.options.name, ch.map->publisher_pid(), last);
    sink.on_lost(index, ch.publisher_id, last);
  }
  detach_channel(c, ch);
  return true;
}

bool ShmSubscriber::refill(Channel& c) {
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
  // One load of a word that changes only when a publisher comes or goes.
  if (c.gen != nullptr && c.gen->load(std::memory_order_relaxed) != c.gen_seen) scan(c, clock::now());
  const auto count = static_cast<std::uint32_t>(c.chans.size());
  if (count == 0) return 0;
  std::size_t n = 0;
  bool ended = false;
  for (std::uint32_t k = 0, i = c.next_chan; k < count; ++k, ++i) {
    if (i >= count) i = 0;  // no division on the latency path
    auto& ch = c.chans[i];
    n += drain_channel(index, c, ch, sink, max - n);  // max 0: greetings and departures only
    ended |= ch.map == nullptr;
    if (n >= max && max > 0) break;
  }
  if (ended) {
    std::erase_if(c.chans, [](const Channel& ch) { return ch.map == nullptr; });
    c.next_chan = 0;
  } else if (count > 1 && ++c.next_chan == count) {
    c.next_chan = 0;
  }
  return n;
}

std::size_t ShmSubscriber::drain_channel(std::uint32_t index, Conn& c, Channel& ch, FrameSink& sink,
                                         std::size_t max) {
  if (!ch.welcomed && !greeted(index, c, ch, sink)) return 0;
  const std::uint64_t bit = 1ull << ch.slot;
  std::size_t n = 0;
  while (n < max) {
    if (ch.batch_pos == ch.batch_len && !refill(ch)) {
      if (n == 0) end_of_publisher(index, c, ch, sink);
      break;
    }
    const auto chunk = ch.batch[ch.batch_pos++];
    if (ch.batch_pos < ch.batch_len) {
      // The next chunk's header and first lines, fetched while this one is handled.
      const auto* next = reinterpret_cast<const char*>(ch.map->chunk(ch.batch[ch.batch_pos]));
      if (next != nullptr) {
        for (int line = 0; line < 4; ++line) __builtin_prefetch(next + line * cache_line);
      }
    }
    const auto bytes = ch.map->envelope_of(chunk);
    if (bytes.empty()) {
      if (auto* h = ch.map->chunk(chunk)) h->holders.fetch_and(~bit, std::memory_order_release);
      sink.on_bad_frame(index, Errc::malformed, 0);
      continue;
    }
    Frame frame(&chunk_frame_ops, index);
    new (frame.storage()) Held{ch.map, ch.map->chunk(chunk), bit, bytes.data(), bytes.size()};
    ch.map->retain();
    sink.on_data(std::move(frame));
    ++n;
  }
  return n;
}

bool ShmSubscriber::greeted(std::uint32_t index, Conn& c, Channel& ch, FrameSink& sink) {
  // The publisher answers a claimed slot with `joined` (history starts there) or `rejected`.
  auto& s = ch.map->slot(ch.slot);
  if (const auto why = s.rejected.load(std::memory_order_acquire); why != 0) {
    const auto offered = std::min<std::uint32_t>(s.offered.load(std::memory_order_relaxed),
                                                 static_cast<std::uint32_t>(DurabilityKind::persistent));
    const auto reason = why == static_cast<std::uint32_t>(RejectReason::durability)
                            ? "the publisher offers less durability than requested"
                            : "the publisher found this subscription's request malformed";
    sink.on_reject(index, ch.publisher_id, static_cast<DurabilityKind>(offered), m_config.durability.kind, reason);
    const auto now = clock::now();
    c.refused.emplace_back(ch.publisher_id, now + rejected_retry);
    detach_channel(c, ch);
    c.rescan = true;  // scan() asks again once the time has come
    return false;
  }
  const auto first = s.joined.load(std::memory_order_acquire);
  if (first == 0) return false;  // the publisher has not taken us in yet
  ch.welcomed = true;
  sink.on_welcome(index, ch.publisher_id, first, s.lost.load(std::memory_order_relaxed), ch.instance);
  return true;
}

bool ShmSubscriber::ack(std::uint32_t source, std::uint64_t publisher_id, std::uint64_t seq) {
  // The publisher reads the word at its next publish or service() and stores it. An ack
  // for a publisher we are not attached to is dropped: a new welcome makes the core ack again.
  if (source >= m_conns.size()) return true;
  for (auto& ch : m_conns[source].chans) {
    if (ch.map == nullptr || !ch.welcomed || ch.publisher_id != publisher_id) continue;
    auto& acked = ch.map->slot(ch.slot).acked;
    // A group member acks the last message it handled, in the order they were pushed to it:
    // that may be a lower sequence than the one before.
    const auto before = acked.load(std::memory_order_relaxed);
    if (m_config.group.empty() ? seq > before : seq != before) acked.store(seq, std::memory_order_release);
  }
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
  WaitWord words[128];
  std::size_t n = 0;
  bool ready = false;
  for (auto& c : m_conns) {
    // A new channel wakes us too: its publisher bumps the directory's generation.
    if (c.gen != nullptr && n < std::size(words)) {
      const auto g = c.gen->load(std::memory_order_seq_cst);
      words[n++] = {const_cast<std::atomic<std::uint32_t>*>(c.gen), g};
      if (g != c.gen_seen) ready = true;
    }
    for (auto& ch : c.chans) {
      if (n == std::size(words)) break;
      auto& s = ch.map->slot(ch.slot);
      s.sleeping.store(1, std::memory_order_seq_cst);
      words[n++] = {&s.wake, s.wake.load(std::memory_order_seq_cst)};
    }
  }
  // Pairs with the publisher's fence after writing entries: either we see its entry
  // now, or it sees `sleeping` and bumps the word we sleep on.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (auto& c : m_conns) {
    for (auto& ch : c.chans) {
      const bool closed =
          ch.map->header().state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(SegmentState::live);
      if (has_entry(ch) || closed) ready = true;
    }
  }
  if (!ready && n > 0) futex_wait_any({words, n}, std::min<std::chrono::nanoseconds>(timeout, publisher_liveness_period));
  for (auto& c : m_conns) {
    for (auto& ch : c.chans) ch.map->slot(ch.slot).sleeping.store(0, std::memory_order_relaxed);
  }
  if (n == 0) std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(timeout, std::chrono::milliseconds(10)));
}

void ShmSubscriber::service(time_point now) {
  for (auto& c : m_conns) {
    bool owner_checked = false;
    if (c.dir == nullptr) {
      if (now >= c.next_attempt) attach(c, now);
    } else if (now >= c.next_liveness) {
      // The owner process gone (killed) or its last publisher closed: a new owner makes a
      // new directory (a new instance), which is attached at the next attempt.
      c.next_liveness = now + publisher_liveness_period;
      owner_checked = true;
      if (!c.dir->owner_alive()) {
        detach(c);
        c.next_attempt = now;
      }
    }
    if (c.dir != nullptr && c.rescan && now >= c.next_attempt) scan(c, now);
    for (auto& ch : c.chans) {
      if (ch.publisher_dead || now < ch.next_liveness) continue;
      ch.next_liveness = now + publisher_liveness_period;
      // The publishers of a live directory run in its owner's process, just checked:
      // one look at /proc per endpoint, not one per channel.
      if (owner_checked && c.dir != nullptr && ch.instance == c.dir->instance() &&
          ch.map->publisher_pid() == c.dir->geometry().owner_pid &&
          ch.map->publisher_start() == c.dir->geometry().owner_start) {
        continue;
      }
      if (!process_alive(ch.map->publisher_pid(), ch.map->publisher_start())) ch.publisher_dead = true;
    }
  }
}

std::uint64_t ShmSubscriber::policy_drops() const noexcept {
  std::uint64_t n = 0;
  for (const auto& c : m_conns) {
    n += c.dropped_before;
    for (const auto& ch : c.chans) n += ch.map->slot(ch.slot).dropped.load(std::memory_order_relaxed);
  }
  return n;
}

bool ShmSubscriber::policy_overflowed() const noexcept {
  return std::any_of(m_conns.begin(), m_conns.end(), [](const Conn& c) {
    return std::any_of(c.chans.begin(), c.chans.end(), [](const Channel& ch) {
      return ch.map->slot(ch.slot).overflowed.load(std::memory_order_relaxed) != 0;
    });
  });
}

}  // namespace rill::detail::shm
