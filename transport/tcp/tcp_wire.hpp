// The TCP control frames (see PROTOCOL.md). Data frames are bare envelopes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace rill::detail::tcp {

/// Every control frame starts with these 4 bytes; an envelope cannot (its root
/// offset is far smaller, and bytes 4..8 of an envelope are "RILL").
/// The last byte is the control protocol version (2: several publishers behind one endpoint).
inline constexpr std::byte control_magic[4] = {std::byte{'R'}, std::byte{'L'}, std::byte{'C'}, std::byte{2}};

enum class ControlType : std::uint8_t {
  subscribe = 0x01,    ///< subscriber -> publisher: here I am, this prefix, this policy
  credit = 0x02,       ///< subscriber -> publisher: I consumed n of your messages
  unsubscribe = 0x03,  ///< subscriber -> publisher: I am leaving
  ack = 0x04,          ///< subscriber -> publisher: I handled your messages to me up to seq
  bye_seen = 0x05,     ///< subscriber -> publisher: I have your BYE (and everything before it)
  welcome = 0x81,      ///< publisher -> subscriber: registered; messages start at next_seq
  bye = 0x82,          ///< publisher -> subscriber: leaving after last_seq
  ping = 0x83,         ///< publisher -> subscriber: liveness probe, ignored
  reject = 0x84,       ///< publisher -> subscriber: cannot serve this subscription (and why)
};

inline constexpr std::size_t max_prefix_bytes = 1024;
inline constexpr std::size_t max_name_bytes = 255;    ///< durable and group names
inline constexpr std::size_t max_reason_bytes = 255;  ///< REJECT text
inline constexpr std::size_t max_control_bytes = 64 + max_prefix_bytes + 2 * max_name_bytes;

struct Subscribe {
  std::uint64_t subscription_id = 0;
  std::uint8_t policy = 0;      ///< PolicyKind
  std::uint8_t durability = 0;  ///< DurabilityKind requested
  std::uint32_t window = 0;     ///< initial credit for backpressure, 0 otherwise
  std::uint8_t from = 0;        ///< StartFrom (persistent)
  std::uint32_t history = 0;    ///< transient_local: at most this many history messages (0: all kept)
  std::string_view prefix{};
  std::string_view durable_name{};  ///< persistent: where acks are stored ("" = not durable)
  std::string_view group{};         ///< consumer group ("" = none)
};

struct Ack {
  std::uint64_t subscription_id = 0;
  std::uint64_t publisher_id = 0;
  std::uint64_t seq = 0;  ///< every message this publisher sent this subscription up to seq is handled
};

struct Reject {
  std::uint64_t publisher_id = 0;
  std::uint64_t subscription_id = 0;
  std::uint8_t offered = 0;    ///< DurabilityKind
  std::uint8_t requested = 0;  ///< DurabilityKind
  std::string_view reason;
};

struct Credit {
  std::uint64_t subscription_id = 0;
  std::uint64_t publisher_id = 0;
  std::uint32_t credits = 0;
};

struct Welcome {
  std::uint64_t publisher_id = 0;
  std::uint64_t next_seq = 0;  ///< the first sequence this subscription will be sent (history first)
  std::uint64_t subscription_id = 0;
  std::uint64_t lost = 0;    ///< messages before next_seq it asked for that retention deleted
  std::uint8_t offered = 0;  ///< DurabilityKind the publisher offers
  std::uint64_t instance = 0;  ///< the bound endpoint (random per bind; shared by its publishers)
};

struct Bye {
  std::uint64_t publisher_id = 0;
  std::uint64_t last_seq = 0;
};

/// A decoded control frame; `type` says which member is meaningful.
struct Control {
  ControlType type{};
  Subscribe subscribe;
  Credit credit;
  Welcome welcome;
  Bye bye;
  Ack ack;  ///< also BYE_SEEN
  Reject reject;
};

/// A batch frame carries several envelopes from one publisher: this magic, a u32
/// count, then per envelope a u32 length, 4 zero bytes, the envelope and zero padding
/// to a multiple of 8 (so every envelope starts 8-aligned relative to the frame).
inline constexpr std::byte batch_magic[4] = {std::byte{'R'}, std::byte{'L'}, std::byte{'B'}, std::byte{1}};
inline constexpr std::size_t batch_header_bytes = 8;
inline constexpr std::size_t batch_entry_header_bytes = 8;

/// True when the frame starts with the batch magic.
[[nodiscard]] bool is_batch(std::span<const std::byte> frame) noexcept;

/// Walks a batch frame: calls `visit(offset, length)` for each envelope and returns
/// true, or returns false (having visited nothing) when any length or the count lies.
template <class Visit>
bool for_each_in_batch(std::span<const std::byte> frame, Visit&& visit) {
  if (frame.size() < batch_header_bytes) return false;
  std::uint32_t count = 0;
  std::memcpy(&count, frame.data() + 4, 4);
  if (count == 0 || count > (frame.size() - batch_header_bytes) / batch_entry_header_bytes) return false;
  // First pass checks every bound, so a lie anywhere delivers nothing.
  for (int pass = 0; pass < 2; ++pass) {
    std::size_t at = batch_header_bytes;
    for (std::uint32_t i = 0; i < count; ++i) {
      if (frame.size() - at < batch_entry_header_bytes) return false;
      std::uint32_t len = 0;
      std::memcpy(&len, frame.data() + at, 4);
      at += batch_entry_header_bytes;
      if (len == 0 || len > frame.size() - at) return false;
      if (pass == 1) visit(at, std::size_t{len});
      at += (std::size_t{len} + 7) & ~std::size_t{7};
      if (at > frame.size()) at = frame.size();
    }
    if (pass == 0 && at != frame.size()) return false;
  }
  return true;
}

/// True when the frame starts with the control magic.
[[nodiscard]] bool is_control(std::span<const std::byte> frame) noexcept;

/// Decodes a control frame; nullopt for anything malformed (wrong size, type, lengths).
/// `frame` may be unaligned: fields are read with memcpy. Views point into `frame`.
[[nodiscard]] std::optional<Control> decode_control(std::span<const std::byte> frame) noexcept;

/// Encoders write into `out` (at least max_control_bytes) and return the used length.
std::size_t encode_subscribe(std::span<std::byte> out, const Subscribe& s) noexcept;
std::size_t encode_credit(std::span<std::byte> out, const Credit& c) noexcept;
std::size_t encode_unsubscribe(std::span<std::byte> out, std::uint64_t subscription_id) noexcept;
std::size_t encode_ack(std::span<std::byte> out, const Ack& a) noexcept;
/// BYE_SEEN has ACK's layout; `a.seq` is the BYE's last_seq.
std::size_t encode_bye_seen(std::span<std::byte> out, const Ack& a) noexcept;
std::size_t encode_welcome(std::span<std::byte> out, const Welcome& w) noexcept;
std::size_t encode_reject(std::span<std::byte> out, const Reject& r) noexcept;
std::size_t encode_bye(std::span<std::byte> out, const Bye& b) noexcept;
std::size_t encode_ping(std::span<std::byte> out) noexcept;

}  // namespace rill::detail::tcp
