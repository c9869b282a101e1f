// The shared-memory files of an endpoint shm://NAME: the directory /dev/shm/rill.NAME
// (the channels, one per publisher, and the subscriptions registered on the endpoint) and
// one segment per publisher, /dev/shm/rill.NAME.<publisher id, 16 hex digits>. PROTOCOL.md
// describes both byte by byte; bump dir_version / shm_version when one changes.
//
// One publisher owns a segment. It holds a header, a table of subscriber slots, one
// ring of chunk references per slot, and pools of fixed-size chunks. Who may write a
// field is stated next to it; every other process only reads it. Nothing read from
// the segment is trusted: offsets, lengths and indices are bounds-checked by the
// reader before use (see shm_segment.hpp), because any process with write access to
// the file could have scribbled on it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace rill::detail::shm {

inline constexpr char shm_magic[8] = {'R', 'I', 'L', 'L', 'S', 'H', 'M', '\0'};
inline constexpr std::uint32_t shm_version = 4;
inline constexpr std::size_t cache_line = 64;
inline constexpr std::uint32_t max_slots = 63;  // one holder bit each in a 64-bit word
inline constexpr std::uint32_t max_classes = 8;
inline constexpr std::uint32_t max_topic_bytes = 256;
inline constexpr std::uint32_t max_chunks = 1u << 24;         // a ring entry keeps 24 bits of chunk index
inline constexpr std::uint64_t publisher_holds = 1ull << 63;  // holder bit of the publisher's own loans
inline constexpr std::uint32_t max_durable_name_bytes = 128;
inline constexpr std::uint32_t max_group_name_bytes = 128;

static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

/// Life of the segment (SegmentHeader::state), written by the publisher.
enum class SegmentState : std::uint32_t { live = 1, closed = 2 };

/// Life of a subscriber slot: the low 8 bits of Slot::owner (the pid is above them).
enum class SlotState : std::uint32_t {
  free = 0,      ///< unowned; a subscriber may claim it with a CAS from 0
  claiming = 1,  ///< a subscriber is filling it in (publisher ignores it)
  active = 2,    ///< ready: the publisher takes it in at its next look at the roster
  leaving = 3,   ///< its subscriber detached; the publisher drains and frees it
  left = 4,      ///< drained; freed once no chunk carries its holder bit
};

[[nodiscard]] constexpr std::uint64_t make_owner(std::uint32_t pid, SlotState s) noexcept {
  return static_cast<std::uint64_t>(pid) << 8 | static_cast<std::uint64_t>(s);
}
[[nodiscard]] constexpr SlotState owner_state(std::uint64_t owner) noexcept {
  return static_cast<SlotState>(owner & 0xff);
}
[[nodiscard]] constexpr std::uint32_t owner_pid(std::uint64_t owner) noexcept {
  return static_cast<std::uint32_t>(owner >> 8);
}

/// Why a publisher refused a slot (Slot::rejected); 0 while it did not.
enum class RejectReason : std::uint32_t {
  none = 0,
  durability = 1,  ///< the request asks for more durability than the publisher offers
  malformed = 2,   ///< the request is not one a subscriber writes (bad kind, start, name or group)
};

/// A ring entry: (position + 1) in the high 40 bits, the chunk index in the low 24.
/// 0 means "never written". A reader at position p takes the entry only if it names p.
[[nodiscard]] constexpr std::uint64_t make_entry(std::uint64_t pos, std::uint32_t chunk) noexcept {
  return ((pos + 1) & ((1ull << 40) - 1)) << 24 | chunk;
}
[[nodiscard]] constexpr bool entry_is(std::uint64_t entry, std::uint64_t pos) noexcept {
  return (entry >> 24) == ((pos + 1) & ((1ull << 40) - 1));
}
[[nodiscard]] constexpr std::uint32_t entry_chunk(std::uint64_t entry) noexcept {
  return static_cast<std::uint32_t>(entry & 0xffffff);
}

/// One pool of equal chunks. Chunk i of the segment (global index) lives in the class
/// whose [first_index, first_index + count) holds i.
struct PoolClass {
  std::uint64_t offset;       ///< of the first chunk, from the segment start
  std::uint32_t chunk_bytes;  ///< header + data, a multiple of 64
  std::uint32_t count;
  std::uint32_t first_index;
  std::uint32_t reserved;
};

/// The first page of the segment. Fields above `state` are written once by the
/// publisher before the segment becomes visible under its name, and never change.
struct SegmentHeader {
  char magic[8];
  std::uint32_t version;
  std::uint32_t header_bytes;
  std::uint64_t total_bytes;
  std::uint64_t publisher_id;
  std::uint64_t publisher_start;  ///< publisher's process start time (clock ticks since boot)
  std::uint32_t publisher_pid;
  std::uint32_t slot_count;
  std::uint32_t ring_capacity;  ///< entries per slot ring, a power of two
  std::uint32_t class_count;
  std::uint64_t slots_offset;
  std::uint64_t rings_offset;
  std::uint32_t chunk_count;  ///< sum of the classes' counts
  std::uint32_t topic_bytes;
  PoolClass classes[max_classes];
  char topic[max_topic_bytes];

  // Written by the publisher while it runs.
  alignas(cache_line) std::atomic<std::uint32_t> state;  ///< SegmentState
  std::atomic<std::uint32_t> reserved0;
  std::atomic<std::uint64_t> last_seq;  ///< last sequence published (what a dead publisher sent)
  std::atomic<std::uint64_t> next_seq;  ///< sequence the next message will carry

  // Bumped by a subscriber whenever it claims or leaves a slot; the publisher compares
  // it once per publish to notice joins and departures.
  alignas(cache_line) std::atomic<std::uint64_t> roster;

  // A publisher waiting for backpressure room sleeps on pub_wake after raising
  // pub_waiting; a subscriber that frees room bumps pub_wake and wakes it.
  alignas(cache_line) std::atomic<std::uint32_t> pub_wake;
  std::atomic<std::uint32_t> pub_waiting;
};

/// One subscriber's place in the segment: nine cache lines, each written mostly by
/// one side so that they do not bounce between cores.
struct Slot {
  // Line 0: written by the subscriber (while claiming, and its wake-up handshake).
  alignas(cache_line) std::atomic<std::uint64_t> owner;  ///< make_owner(pid, SlotState)
  std::uint64_t owner_start;                             ///< subscriber's process start time (pid reuse check)
  std::uint64_t subscription_id;
  std::uint64_t policy_capacity;        ///< messages, or bytes for buffer
  std::uint32_t policy_kind;            ///< rill::PolicyKind
  std::atomic<std::uint32_t> sleeping;  ///< 1 while the subscriber is (about to be) in futex wait
  std::atomic<std::uint32_t> wake;      ///< futex word the subscriber sleeps on
  /// 1: the publisher filled this slot in for a subscription registered in the directory
  /// (pre-claimed, before its first message); its subscriber stores 0 when it adopts it.
  std::atomic<std::uint32_t> preclaimed;

  // Line 1: the next position the subscriber takes. The subscriber advances it by CAS
  // when it takes an entry; a drop-oldest publisher advances it by CAS to discard the
  // oldest entry. Whoever wins the CAS at position p owns entry p's holder bit.
  alignas(cache_line) std::atomic<std::uint64_t> tail;

  // Line 2: written by the publisher.
  alignas(cache_line) std::atomic<std::uint64_t> joined;  ///< 0, then the first sequence offered (history first)
  std::atomic<std::uint64_t> dropped;                     ///< messages the publisher discarded for this slot's policy
  std::atomic<std::uint32_t> overflowed;                  ///< 1 once a buffer policy passed its byte limit
  std::atomic<std::uint32_t> rejected;                    ///< RejectReason; set instead of `joined`
  std::atomic<std::uint64_t> lost;     ///< with `joined`: messages before it asked for that retention deleted
  std::atomic<std::uint32_t> offered;  ///< with `joined` or `rejected`: the publisher's rill::DurabilityKind
  std::atomic<std::uint32_t> reserved2;

  // Lines 3-5: the durability request, written by the subscriber while claiming; the
  // publisher reads it once, when it takes the slot in, and validates every field.
  alignas(cache_line) std::uint32_t durability;  ///< rill::DurabilityKind requested
  std::uint32_t start_from;                      ///< rill::StartFrom (persistent)
  std::uint64_t history;                         ///< transient_local: at most this many (0: all kept)
  std::uint32_t durable_name_bytes;              ///< persistent: length of durable_name, at most 128
  std::uint32_t group_bytes;                     ///< consumer group: length of `group` (0: fan-out), at most 128
  char durable_name[max_durable_name_bytes];

  // Line 6: written by a durable subscriber: it handled everything up to this sequence.
  // A consumer group member writes the last message it handled instead, which may be
  // below the one before (a departed member's, handed to it): acks follow the order in
  // which the publisher pushed messages into its ring, not sequence order.
  alignas(cache_line) std::atomic<std::uint64_t> acked;

  // Lines 7-8: the consumer group the subscription joins (`group_bytes` of it), written
  // while claiming with the request above and read by the publisher at the same time.
  alignas(cache_line) char group[max_group_name_bytes];
};

/// Precedes each chunk's data. Written by the publisher before the chunk is published,
/// except `holders`, whose bits their holders clear.
struct ChunkHeader {
  std::atomic<std::uint64_t> holders;  ///< bit i: slot i still holds it; bit 63: the publisher
  std::uint32_t index;                 ///< own global index (a reader checks it)
  std::uint32_t data_offset;           ///< envelope start, from the chunk start
  std::uint32_t data_size;             ///< envelope bytes
  std::uint32_t reserved;
  std::uint64_t sequence;
  std::uint64_t reserved2[4];
};

inline constexpr std::size_t chunk_header_bytes = 64;
static_assert(sizeof(ChunkHeader) == chunk_header_bytes);
static_assert(sizeof(Slot) == 9 * cache_line);
// PROTOCOL.md 11.3 gives these offsets.
static_assert(offsetof(Slot, lost) == 152 && offsetof(Slot, offered) == 160);
static_assert(offsetof(Slot, durability) == 192 && offsetof(Slot, durable_name) == 216);
static_assert(offsetof(Slot, acked) == 384);
static_assert(offsetof(Slot, group_bytes) == 212 && offsetof(Slot, group) == 448);
static_assert(offsetof(Slot, preclaimed) == 44);
static_assert(sizeof(SegmentHeader) <= 4096);

// ---- the directory: /dev/shm/rill.NAME ------------------------------------------
//
// Created by the one process that owns the endpoint (its first publisher), removed by it
// when its last publisher closes. Its publishers write the channel table; subscribers
// write their own registry entries. Every multi-byte field is read and written with
// atomic instructions (relaxed, ordered by the state words), so a reader racing a writer
// sees torn values at worst, which the state-word recheck discards.

inline constexpr char dir_magic[8] = {'R', 'I', 'L', 'L', 'D', 'I', 'R', '\0'};
inline constexpr std::uint32_t dir_version = 1;
inline constexpr std::uint32_t dir_header_bytes = 4096;
inline constexpr std::uint32_t max_prefix_bytes = 256;
inline constexpr std::uint32_t dir_channels = 256;     // publishers (topics) at once per endpoint
inline constexpr std::uint32_t dir_subscribers = 256;  // registered subscriptions at once
inline constexpr std::uint32_t max_dir_entries = 4096;  // what a reader accepts

/// Life of the directory (DirectoryHeader::state), written by its owner.
enum class DirState : std::uint32_t { live = 1, closed = 2 };

/// Life of a channel entry: the low 8 bits of ChannelEntry::word; the bits above count
/// rewrites, so a reader notices an entry rewritten while it copied it.
enum class ChannelState : std::uint32_t { free = 0, writing = 1, live = 2, closed = 3 };

/// Life of a registry entry: the low 8 bits of SubscriberEntry::owner (the pid above).
enum class EntryState : std::uint32_t { free = 0, claiming = 1, active = 2 };

[[nodiscard]] constexpr std::uint64_t make_entry_owner(std::uint32_t pid, EntryState s) noexcept {
  return static_cast<std::uint64_t>(pid) << 8 | static_cast<std::uint64_t>(s);
}

/// The first page of the directory. Fields above `state` are written once before the
/// file gets its name and never change.
struct DirectoryHeader {
  char magic[8];
  std::uint32_t version;
  std::uint32_t header_bytes;
  std::uint64_t total_bytes;
  std::uint64_t instance;     ///< random per bind, never 0: a new one means the endpoint restarted
  std::uint64_t owner_start;  ///< the owning process's start time (clock ticks since boot)
  std::uint32_t owner_pid;
  std::uint32_t channel_count;
  std::uint32_t subscriber_count;
  std::uint32_t reserved;
  std::uint64_t channels_offset;
  std::uint64_t subscribers_offset;

  // Written by the owner while it runs.
  alignas(2 * cache_line) std::atomic<std::uint32_t> state;  ///< DirState
  /// Bumped (and FUTEX_WAKEd) whenever a channel appears or ends: subscribers compare it
  /// on every drain and sleep on it beside their slots' words.
  std::atomic<std::uint32_t> generation;
};

/// One publisher (topic) on the endpoint; written by the owner process only.
struct ChannelEntry {
  std::atomic<std::uint64_t> word;          ///< rewrites << 8 | ChannelState
  std::atomic<std::uint64_t> publisher_id;  ///< its segment is rill.NAME.<id as 16 hex digits>
  std::atomic<std::uint32_t> topic_bytes;
  std::uint32_t reserved0;
  std::uint64_t reserved1[5];
  std::uint64_t topic[max_topic_bytes / 8];  ///< bytes, accessed as atomic words
};

/// One subscription registered on the endpoint, written by its subscriber while claiming:
/// a publisher created later pre-claims a slot for it in its new segment with this request.
struct SubscriberEntry {
  std::atomic<std::uint64_t> owner;  ///< pid << 8 | EntryState
  std::atomic<std::uint64_t> owner_start;
  std::atomic<std::uint64_t> subscription_id;
  std::atomic<std::uint64_t> policy_capacity;
  std::atomic<std::uint32_t> policy_kind;
  std::atomic<std::uint32_t> durability;
  std::atomic<std::uint32_t> start_from;
  std::atomic<std::uint32_t> prefix_bytes;
  std::atomic<std::uint64_t> history;
  std::atomic<std::uint32_t> durable_name_bytes;
  std::atomic<std::uint32_t> group_bytes;
  std::uint64_t prefix[max_prefix_bytes / 8];
  std::uint64_t durable_name[max_durable_name_bytes / 8];
  std::uint64_t group[max_group_name_bytes / 8];
};

// PROTOCOL.md 11.11 gives these offsets.
static_assert(offsetof(DirectoryHeader, instance) == 24 && offsetof(DirectoryHeader, owner_pid) == 40);
static_assert(offsetof(DirectoryHeader, channel_count) == 44 && offsetof(DirectoryHeader, channels_offset) == 56);
static_assert(offsetof(DirectoryHeader, subscribers_offset) == 64 && offsetof(DirectoryHeader, state) == 128);
static_assert(offsetof(DirectoryHeader, generation) == 132 && sizeof(DirectoryHeader) <= dir_header_bytes);
static_assert(offsetof(ChannelEntry, publisher_id) == 8 && offsetof(ChannelEntry, topic_bytes) == 16);
static_assert(offsetof(SubscriberEntry, policy_kind) == 32 && offsetof(SubscriberEntry, prefix_bytes) == 44);
static_assert(offsetof(SubscriberEntry, history) == 48 && offsetof(SubscriberEntry, group_bytes) == 60);
static_assert(sizeof(ChannelEntry) == 5 * cache_line && offsetof(ChannelEntry, topic) == 64);
static_assert(sizeof(SubscriberEntry) == 9 * cache_line && offsetof(SubscriberEntry, prefix) == 64);
static_assert(offsetof(SubscriberEntry, durable_name) == 320 && offsetof(SubscriberEntry, group) == 448);

}  // namespace rill::detail::shm
