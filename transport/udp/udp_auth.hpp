// Authenticated udp datagrams (PROTOCOL.md 10.13): a shared group key, a 40-byte trailer
// on every datagram with the sender's id, a per-sender counter, the sender's clock and a
// keyed BLAKE2b-128 MAC over everything before it. Checked before any other byte is
// read; replays are refused by a per-sender sliding window on each receiving socket.
#pragma once

#include <sodium.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <sys/socket.h>

#include "rill/error.hpp"

namespace rill::detail::udp {

inline constexpr std::size_t auth_trailer_bytes = 40;
inline constexpr std::size_t auth_mac_bytes = 16;
inline constexpr std::size_t auth_key_bytes = 32;
/// Header byte 6 of an authenticated datagram (0 in a plain one).
inline constexpr std::uint8_t auth_marker = 0x01;
/// Trailer scope: where the sender addressed the datagram. A datagram replayed to the
/// other kind of socket fails the check.
inline constexpr std::uint8_t scope_group = 1;
inline constexpr std::uint8_t scope_unicast = 2;
/// Sequences a receiver remembers behind the newest one of each sender.
inline constexpr std::uint64_t replay_window = 2048;
/// Senders each receiving socket tracks; the least recently heard one is forgotten first.
inline constexpr std::size_t max_tracked_senders = 256;

/// One group key, with its precomputed keyed BLAKE2b state.
struct AuthKey {
  std::array<unsigned char, auth_key_bytes> bytes{};
  std::uint16_t id = 0;  ///< names the key in the trailer without revealing it
  crypto_generichash_state keyed{};
};

/// The keys of one auth_key_file: the first signs, every one verifies (key rotation).
class AuthKeys {
 public:
  /// Reads FILE: one or two lines of 64 hex digits; refused if group or others may read it.
  [[nodiscard]] static Result<std::shared_ptr<const AuthKeys>> load(const std::string& path);
  /// From raw keys (tests and fuzzing); `keys` holds 1 or 2.
  [[nodiscard]] static std::shared_ptr<const AuthKeys> from(std::span<const std::array<unsigned char, 32>> keys);

  [[nodiscard]] const AuthKey& signing() const noexcept { return m_keys.front(); }
  [[nodiscard]] const AuthKey* find(std::uint16_t id) const noexcept;
  /// The key id of `key`: the first two bytes of BLAKE2b-128(key = key, "rill-udp-key-id").
  [[nodiscard]] static std::uint16_t id_of(std::span<const unsigned char, auth_key_bytes> key) noexcept;

 private:
  std::vector<AuthKey> m_keys;
};

/// Writes a new key file (32 random bytes as 64 hex digits and a newline; mode 0600,
/// never overwriting). Returns the key's id.
[[nodiscard]] Result<std::uint16_t> write_auth_key_file(const std::string& path);

/// The sending half: one per sending socket. Not thread-safe.
class Sealer {
 public:
  explicit Sealer(std::shared_ptr<const AuthKeys> keys);

  /// Sends `dgram` as an authenticated datagram: its 16-byte header is copied to `head`
  /// with byte 6 set to auth_marker (the caller's buffer is never changed, so windows of
  /// encoded datagrams stay plain) and `trailer` is filled. The wire datagram is then
  /// head, dgram[16..], trailer.
  void seal(std::span<const std::byte> dgram, std::uint8_t scope, std::span<std::byte, 16> head,
            std::span<std::byte, auth_trailer_bytes> trailer);

  [[nodiscard]] std::uint64_t sender_id() const noexcept { return m_sender; }

  /// Scratch for a send: each message gets its marked header, its rest and its trailer
  /// (three iovecs).
  static constexpr unsigned batch = 64;
  struct Batch {
    mmsghdr msgs[batch];
    iovec iov[3 * batch];
    std::byte heads[batch][16];
    std::byte trailers[batch][auth_trailer_bytes];
  };
  Batch& scratch() noexcept { return *m_batch; }

 private:
  std::shared_ptr<const AuthKeys> m_keys;
  std::uint64_t m_sender = 0;
  std::uint64_t m_counter = 0;
  std::unique_ptr<Batch> m_batch;
};

/// What the receiving check decided.
enum class AuthVerdict : std::uint8_t {
  ok,
  unauthenticated,  ///< no marker or too short for a trailer (or, for a keyless receiver: one carrying a trailer)
  bad_mac,          ///< unknown key id or a MAC that does not match: forged or damaged
  wrong_scope,      ///< multicast datagram on a unicast socket or the reverse
  stale,            ///< its clock is further from ours than the allowed skew
  replayed,         ///< seen already, or older than the sender's window
};

[[nodiscard]] const char* to_string(AuthVerdict v) noexcept;

/// Per receiving socket: the newest counter and a bitmap of the window below it, per sender.
class ReplayFilter {
 public:
  /// True (and remembered) if (sender, counter) is new; false for a replay.
  bool accept(std::uint64_t sender, std::uint64_t counter, std::uint64_t now_tick) noexcept;
  [[nodiscard]] std::size_t senders() const noexcept { return m_senders.size(); }

 private:
  struct Sender {
    std::uint64_t id = 0;
    std::uint64_t top = 0;        ///< newest accepted counter
    std::uint64_t last_used = 0;  ///< for eviction
    std::array<std::uint64_t, replay_window / 64> seen{};  ///< bit (top - c) for c in (top - window, top]
  };
  std::vector<Sender> m_senders;
};

/// The receiving half: checks a datagram and tells the length of its body.
class Verifier {
 public:
  /// `keys` null: a receiver without a key (it refuses datagrams that carry a trailer).
  /// `max_skew_s` 0: the sender's clock is not checked.
  Verifier(std::shared_ptr<const AuthKeys> keys, std::uint32_t max_skew_s) noexcept
      : m_keys(std::move(keys)), m_max_skew(max_skew_s) {}

  /// Checks `dgram` before anything else reads it. On ok, `body` is the datagram without
  /// its trailer. `now_s`: our clock in Unix seconds.
  [[nodiscard]] AuthVerdict check(std::span<const std::byte> dgram, std::uint8_t scope, ReplayFilter& replay,
                                  std::uint64_t now_s, std::span<const std::byte>& body) noexcept;
  [[nodiscard]] bool keyed() const noexcept { return m_keys != nullptr; }

 private:
  std::shared_ptr<const AuthKeys> m_keys;
  std::uint32_t m_max_skew = 0;
  std::uint64_t m_tick = 0;
};

/// Unix time in seconds (CLOCK_REALTIME, coarse).
[[nodiscard]] std::uint64_t unix_seconds() noexcept;

}  // namespace rill::detail::udp
