// Slow-consumer policies and durability modes: plain data chosen per subscription.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "rill/error.hpp"

namespace rill {

/// What a subscription does when it falls behind its publishers.
enum class PolicyKind : std::uint8_t {
  drop_oldest = 1,   ///< queue of N messages; the oldest is discarded for the newest
  drop_newest = 2,   ///< queue of N; new messages are discarded while full
  buffer = 3,        ///< queue grows to a byte limit; past it: overflow event, then drop_oldest
  backpressure = 4,  ///< window of N unconsumed messages; a full window makes publish() wait
};

/// A policy and its capacity (messages, or bytes for `buffer`).
struct Policy {
  PolicyKind kind = PolicyKind::drop_oldest;
  std::size_t capacity = 1024;

  static constexpr Policy drop_oldest(std::size_t n) { return {PolicyKind::drop_oldest, n}; }
  static constexpr Policy drop_newest(std::size_t n) { return {PolicyKind::drop_newest, n}; }
  static constexpr Policy buffer(std::size_t bytes) { return {PolicyKind::buffer, bytes}; }
  static constexpr Policy backpressure(std::size_t window) { return {PolicyKind::backpressure, window}; }
};

/// The largest window/queue a policy may ask for (bounds memory on both sides).
inline constexpr std::size_t max_policy_messages = 1u << 16;

/// Parses the CLI form: "drop-oldest:N", "drop-newest:N", "buffer:BYTES", "backpressure:N".
[[nodiscard]] Result<Policy> parse_policy(std::string_view text);

/// The CLI form of a policy, e.g. "backpressure:64".
[[nodiscard]] std::string to_string(const Policy& policy);

/// How much history a publisher offers and a subscription asks for (ordered: more is greater).
enum class DurabilityKind : std::uint8_t { volatile_ = 0, transient_local = 1, persistent = 2 };

/// A durability mode. A publisher offers one; a subscription requests one, and a request
/// above the offer is refused (an incompatibility event), never silently downgraded.
struct Durability {
  DurabilityKind kind = DurabilityKind::volatile_;
  /// transient_local: publisher: messages kept (the last N); subscription: at most this many
  /// of them are replayed to it (0: all the publisher keeps).
  std::size_t history = 0;
  /// persistent, publisher side: the log directory (see PublisherOptions::log for its settings).
  std::string dir;

  static Durability volatile_mode() { return {}; }
  static Durability transient_local(std::size_t n) { return {DurabilityKind::transient_local, n, {}}; }
  static Durability persistent(std::string dir = {}) { return {DurabilityKind::persistent, 0, std::move(dir)}; }
};

/// The largest transient_local history (messages kept in memory per publisher).
inline constexpr std::size_t max_history_messages = 1u << 20;

/// Parses the CLI form: "volatile", "transient-local:N", "persistent:DIR" (a subscription
/// may say just "persistent").
[[nodiscard]] Result<Durability> parse_durability(std::string_view text);
/// The CLI form, e.g. "transient-local:100".
[[nodiscard]] std::string to_string(const Durability& durability);
/// "volatile", "transient-local" or "persistent".
[[nodiscard]] std::string_view to_string(DurabilityKind kind);

/// Where a durable subscription starts when it (re)joins a persistent publisher.
enum class StartFrom : std::uint8_t {
  last_ack = 0,  ///< after its last acknowledged position (from the start when it has none)
  start = 1,     ///< the first retained message
  end = 2,       ///< only messages published from now on
};

/// Parses "last-ack", "start" or "end".
[[nodiscard]] Result<StartFrom> parse_start_from(std::string_view text);

}  // namespace rill
