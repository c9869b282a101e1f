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

/// How much history a publisher offers and a subscription asks for.
enum class DurabilityKind : std::uint8_t { volatile_ = 0, transient_local = 1, persistent = 2 };

}  // namespace rill
