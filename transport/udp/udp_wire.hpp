// The UDP datagrams (see PROTOCOL.md, "UDP multicast"): every field little-endian,
// read with memcpy so a datagram may sit at any address.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

namespace rill::detail::udp {

/// Every datagram starts with "RLU" and the protocol version.
inline constexpr std::byte magic[3] = {std::byte{'R'}, std::byte{'L'}, std::byte{'U'}};
inline constexpr std::uint8_t version = 1;

enum class Type : std::uint8_t {
  data = 0x01,       ///< publisher -> group: one or more whole envelopes, consecutive sequences
  frag = 0x02,       ///< publisher -> group: one fragment of an envelope too big for one datagram
  heartbeat = 0x03,  ///< publisher -> group (or one subscriber): what was sent, what is still retained
  bye = 0x04,        ///< publisher -> group: leaving after last_seq
  welcome = 0x05,    ///< publisher -> subscriber: registered; its messages start at next_seq
  reject = 0x06,     ///< publisher -> subscriber: refused (it asked for more durability than offered)
  status = 0x11,     ///< subscriber -> publisher: join/keepalive, receive and consume positions, window
  nak = 0x12,        ///< subscriber -> publisher: please retransmit these ranges
  leave = 0x13,      ///< subscriber -> publisher: I am leaving
};

inline constexpr std::size_t header_bytes = 16;           ///< magic, version, type, flags, reserved, publisher id
inline constexpr std::size_t data_header_bytes = 32;      ///< + first_seq, count, reserved
inline constexpr std::size_t entry_header_bytes = 8;      ///< per envelope in DATA: u32 length, u32 reserved
inline constexpr std::size_t frag_header_bytes = 48;      ///< + seq, msg_len, frag_size, index, count, offset, reserved
inline constexpr std::size_t max_datagram_bytes = 65507;  ///< the largest IPv4 UDP payload
inline constexpr std::size_t max_prefix_bytes = 1024;
inline constexpr std::size_t max_nak_ranges = 32;
inline constexpr std::size_t max_name_bytes = 255;      ///< durable names (as over tcp) and REJECT reasons
inline constexpr std::size_t durable_block_bytes = 16;  ///< STATUS with flag_durable: + kind, from, name, history, ack
inline constexpr std::size_t group_block_bytes = 4;     ///< STATUS with flag_group: + u16 name_len, u16 reserved
/// The largest non-data datagram (a durable group member's STATUS).
inline constexpr std::size_t max_control_bytes =
    48 + max_prefix_bytes + durable_block_bytes + max_name_bytes + group_block_bytes + max_name_bytes;
inline constexpr std::uint32_t all_fragments = 0xFFFFFFFFu;
/// Sequences at or above this are refused: no publisher gets there, and keeping far from
/// the top keeps every `seq + n` in the receiver free of wrap-around.
inline constexpr std::uint64_t max_sequence = std::uint64_t{1} << 62;

/// Header flag bits.
inline constexpr std::uint8_t flag_reliable = 0x01;    ///< heartbeat/status: the sender runs reliable=1
inline constexpr std::uint8_t flag_bye_seen = 0x02;    ///< status: the subscriber has seen this publisher's BYE
inline constexpr std::uint8_t flag_retransmit = 0x04;  ///< data/frag: a retransmission
inline constexpr std::uint8_t flag_welcomed = 0x08;    ///< status: the subscriber has this publisher's WELCOME
/// status: a durable block follows the prefix; welcome: `lost` follows; data/frag: sent
/// from the history to one subscriber (unicast).
inline constexpr std::uint8_t flag_durable = 0x10;
/// status: a group block follows (the subscription is a consumer group member);
/// data/frag/heartbeat/bye: a group member's own stream, sent to it alone (unicast).
inline constexpr std::uint8_t flag_group = 0x20;
/// status (before the WELCOME): received_seq + 1 is the first sequence this subscriber
/// heard of the publisher; a fan-out volatile subscription starts there while the
/// publisher's window still holds it (a publisher that appears later: its first message).
inline constexpr std::uint8_t flag_heard = 0x40;
/// welcome: the subscription's prefix does not match the publisher's topic; nothing of
/// this publisher is for it (the subscriber ignores its datagrams and stops asking).
inline constexpr std::uint8_t flag_filtered = 0x40;

struct Header {
  Type type{};
  std::uint8_t flags = 0;
  std::uint64_t publisher_id = 0;  ///< sender's id (publisher -> group) or the addressed publisher's id
};

/// DATA: `count` envelopes with sequences first_seq .. first_seq + count - 1.
struct Data {
  std::uint64_t first_seq = 0;
  std::uint32_t count = 0;
};

/// FRAG: bytes [offset, offset + size) of message `seq`, which is `msg_len` long and cut
/// into `frag_count` pieces of `frag_size` (the last one shorter).
struct Frag {
  std::uint64_t seq = 0;
  std::uint32_t msg_len = 0;
  std::uint32_t frag_size = 0;
  std::uint32_t index = 0;
  std::uint32_t count = 0;
  std::uint32_t offset = 0;
  std::span<const std::byte> bytes;
};

/// HEARTBEAT and BYE: next_seq - 1 was the last sequence sent; oldest_seq is the oldest
/// the publisher can still retransmit (== next_seq when it retains nothing).
struct Heartbeat {
  std::uint64_t next_seq = 0;
  std::uint64_t oldest_seq = 0;
};

struct Welcome {
  std::uint64_t subscription_id = 0;
  std::uint64_t next_seq = 0;
  std::uint64_t lost = 0;  ///< flag_durable: messages before next_seq it asked for that retention deleted
};

/// The durable part of a STATUS (flag_durable): what the subscription asks for when it
/// joins, and its acknowledged position afterwards.
struct DurableRequest {
  std::uint8_t kind = 0;      ///< DurabilityKind: transient_local or persistent
  std::uint8_t from = 0;      ///< StartFrom
  std::uint32_t history = 0;  ///< transient_local: at most this many (0: all kept)
  std::uint64_t ack_seq = 0;  ///< handled everything up to here (0: nothing acknowledged yet)
  std::string_view name;      ///< durable name ("" = not durable: no acks stored)
};

/// REJECT: the subscription asked for `requested`, the publisher offers `offered`.
struct Reject {
  std::uint64_t subscription_id = 0;
  std::uint8_t offered = 0;
  std::uint8_t requested = 0;
  std::string_view reason;
};

/// STATUS: everything up to received_seq arrived in order; the handler finished
/// everything up to consumed_seq; with backpressure the publisher may send up to
/// consumed_seq + window.
struct Status {
  std::uint64_t subscription_id = 0;
  std::uint64_t received_seq = 0;
  std::uint64_t consumed_seq = 0;
  std::uint32_t window = 0;
  std::uint8_t policy = 0;  ///< PolicyKind
  std::string_view prefix{};
  std::string_view group{};  ///< flag_group: the consumer group it is a member of ("" = fan-out)
};

/// One NAK range: messages first..last (inclusive); when first == last, only its
/// fragments frag_first..frag_last (all_fragments: the whole message).
struct NakRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::uint32_t frag_first = 0;
  std::uint32_t frag_last = all_fragments;
};

struct Nak {
  std::uint64_t subscription_id = 0;
  std::uint16_t count = 0;
  NakRange ranges[max_nak_ranges];
};

/// A decoded datagram; `header.type` says which member is meaningful. Views point into
/// the datagram.
struct Datagram {
  Header header;
  Data data;
  Frag frag;
  Heartbeat heartbeat;  ///< also BYE
  Welcome welcome;
  Reject reject;
  Status status;
  bool durable = false;    ///< STATUS with flag_durable: `request` is meaningful
  DurableRequest request;  ///< the durable block of a STATUS
  Nak nak;
  std::uint64_t leave_subscription = 0;
};

/// Decodes and checks one datagram: magic, version, type, every length and range
/// (DATA entries are walked and bounded; FRAG geometry must be exact). nullopt for
/// anything malformed. `max_message` bounds msg_len of fragments. `authenticated`: the
/// datagram's trailer was verified and cut off, so its header carries the auth marker.
[[nodiscard]] std::optional<Datagram> decode(std::span<const std::byte> dgram, std::size_t max_message,
                                             bool authenticated = false) noexcept;

/// Walks the entries of a DATA datagram that decode() accepted: visit(index, offset, length).
template <class Visit>
void for_each_entry(std::span<const std::byte> dgram, std::uint32_t count, Visit&& visit) {
  std::size_t at = data_header_bytes;
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint32_t len = 0;
    std::memcpy(&len, dgram.data() + at, 4);
    visit(i, at + entry_header_bytes, std::size_t{len});
    at += entry_header_bytes + ((std::size_t{len} + 7) & ~std::size_t{7});
  }
}

/// Room a DATA datagram needs for one envelope of `n` bytes.
[[nodiscard]] constexpr std::size_t entry_bytes(std::size_t n) noexcept {
  return entry_header_bytes + ((n + 7) & ~std::size_t{7});
}

// Encoders write into `out` (large enough: max_control_bytes, or the datagram size)
// and return the length used.
std::size_t encode_data_header(std::span<std::byte> out, std::uint64_t publisher_id, std::uint64_t first_seq,
                               std::uint32_t count) noexcept;
/// Appends one entry at `at` (zero padding included); returns the new end.
std::size_t append_entry(std::span<std::byte> out, std::size_t at, std::span<const std::byte> envelope) noexcept;
std::size_t encode_frag(std::span<std::byte> out, std::uint64_t publisher_id, const Frag& f) noexcept;
std::size_t encode_heartbeat(std::span<std::byte> out, Type type, std::uint64_t publisher_id, std::uint8_t flags,
                             const Heartbeat& h) noexcept;
/// `durable`: the 40-byte form with `lost` (flag_durable).
std::size_t encode_welcome(std::span<std::byte> out, std::uint64_t publisher_id, const Welcome& w,
                           bool durable = false) noexcept;
/// A WELCOME saying the subscription's prefix does not match (flag_filtered, 32 bytes).
std::size_t encode_filtered(std::span<std::byte> out, std::uint64_t publisher_id, std::uint64_t subscription_id,
                            std::uint64_t next_seq) noexcept;
std::size_t encode_reject(std::span<std::byte> out, std::uint64_t publisher_id, const Reject& r) noexcept;
/// `durable`: appends the durable block (flag_durable).
std::size_t encode_status(std::span<std::byte> out, std::uint64_t publisher_id, std::uint8_t flags, const Status& s,
                          const DurableRequest* durable = nullptr) noexcept;
std::size_t encode_nak(std::span<std::byte> out, std::uint64_t publisher_id, const Nak& n) noexcept;
std::size_t encode_leave(std::span<std::byte> out, std::uint64_t publisher_id, std::uint64_t subscription_id) noexcept;

/// Marks an encoded DATA/FRAG datagram as a retransmission (sets flag_retransmit).
void mark_retransmit(std::span<std::byte> dgram) noexcept;
/// Marks an encoded DATA/FRAG datagram as history sent to one subscriber (flag_durable).
void mark_history(std::span<std::byte> dgram) noexcept;
/// Marks an encoded datagram as part of a group member's own stream (flag_group).
void mark_group(std::span<std::byte> dgram) noexcept;

/// Fragment geometry: how many fragments a message of `len` bytes needs with
/// `frag_size` bytes each.
[[nodiscard]] constexpr std::uint32_t fragment_count(std::size_t len, std::size_t frag_size) noexcept {
  return static_cast<std::uint32_t>((len + frag_size - 1) / frag_size);
}

}  // namespace rill::detail::udp
