// Subscriber: receives matching messages, applies its policy, counts every gap.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rill/function_ref.hpp"
#include "rill/message.hpp"
#include "rill/policy.hpp"
#include "rill/sample.hpp"
#include "rill/stats.hpp"

namespace rill {

namespace detail {
class SubscriberCore;
class NodeCore;
}  // namespace detail

/// A run of sequence numbers from one publisher that the handler will never see.
struct LossEvent {
  std::uint64_t publisher_id = 0;
  std::uint64_t first = 0;  ///< first missing sequence
  std::uint64_t last = 0;   ///< last missing sequence (inclusive)
};

/// A publisher refused this subscription: it offers less durability than requested.
struct IncompatibleEvent {
  std::uint64_t publisher_id = 0;
  std::string endpoint;
  DurabilityKind offered = DurabilityKind::volatile_;
  DurabilityKind requested = DurabilityKind::volatile_;
  std::string reason;
};

/// A secure handshake with a publisher failed (tcp curve): our key refused, a wrong server
/// key, or a publisher without CURVE. The transport keeps retrying.
struct SecurityEvent {
  std::string endpoint;
  std::string reason;
};

/// What happens when a handler fails a message (throws, or returns an error).
struct RetryOptions {
  /// Handler calls per message before it is dead-lettered; 0: failures are not caught
  /// (an exception propagates out of poll(), as without durability).
  unsigned max_attempts = 0;
  std::chrono::milliseconds backoff{10};       ///< wait before the first retry; doubles each time
  std::chrono::milliseconds max_backoff{1000};  ///< ... up to this
  /// The dead-letter log's directory ("" with max_attempts > 0: the message is logged and
  /// skipped, counted in dead_lettered).
  std::string dead_letter_dir{};
};

/// How wait_poll() idles when nothing has arrived.
enum class IdleStrategy : std::uint8_t {
  spin,        ///< busy-poll: lowest latency, one core at 100%
  backoff,     ///< spin, then yield, then sleep up to 1 ms
  block,       ///< sleep in the kernel until input arrives (no CPU while idle; futex on shm)
  spin_block,  ///< spin for SubscriberOptions::spin_before_block, then block
};

/// How a subscription behaves; fill with designated initializers.
struct SubscriberOptions {
  std::vector<std::string> endpoints;              ///< publishers to connect to (same scheme)
  std::string prefix;                              ///< topic prefix to match ("" = everything)
  Policy policy = Policy::drop_oldest(1024);       ///< what happens when it falls behind
  IdleStrategy idle = IdleStrategy::backoff;       ///< used by wait_poll()
  std::chrono::microseconds spin_before_block{50}; ///< spin_block: how long to spin first
  std::size_t max_message_bytes = 64u << 20;       ///< larger frames are counted as oversize and dropped
  VerifyLimits verify{};                           ///< verifier bounds for envelopes from the network
  std::function<void(const LossEvent&)> on_loss{}; ///< called on the polling thread for every gap
  std::function<void(const SubscriberStats&)> on_overflow{};  ///< buffer policy went past its limit (once)

  /// Durability requested: volatile (live only), transient_local (the publisher's last
  /// messages, at most `durability.history` of them when non-zero, then live), persistent
  /// (from the durable name's position, then live; needs durable_name).
  Durability durability{};
  /// persistent: the name the publisher stores this subscription's acknowledged position
  /// under; also names its exactly-once state file in state_dir.
  std::string durable_name{};
  StartFrom from = StartFrom::last_ack;  ///< persistent: where to start on (re)joining
  /// persistent: directory of the local exactly-once state (what the handler has finished,
  /// per publisher); "" = the current directory. Survives kill -9 of this process.
  std::string state_dir{};
  /// persistent: acknowledge automatically once the handler returns (false: call ack()).
  bool auto_ack = true;
  /// persistent with auto_ack = false: a message counts as handled in the state file only
  /// once ack() covers it, not when the handler returns. For handlers that hand messages on
  /// to finish later (a webhook POST): after a crash everything past the last ack() is
  /// delivered again (at-least-once for the unacknowledged tail; never for acknowledged
  /// ones). Not with a consumer group.
  bool handled_on_ack = false;
  /// Consumer group: subscriptions sharing this name split the topic's messages, each
  /// message to one member. Durable (with durable_name) against a persistent publisher:
  /// a member's unacknowledged messages go to another member when it leaves or dies.
  std::string group{};
  RetryOptions retry{};  ///< handler failures: retries with back-off, then dead letters
  /// A publisher refused the durability request (also counted in stats().incompatible).
  std::function<void(const IncompatibleEvent&)> on_incompatible{};
  /// A secure handshake failed (also counted in stats().security_errors), once per failing run.
  std::function<void(const SecurityEvent&)> on_security_error{};
  /// persistent: a previous run of this durable subscription died inside the handler for
  /// this message. Return true if its effect is already done (it is then not delivered
  /// again); without this callback it is delivered again (at-least-once for that one).
  std::function<bool(std::uint64_t publisher_id, std::uint64_t sequence)> in_doubt{};
};

/// Receives on one thread. Move-only; not thread-safe (one polling thread).
class Subscriber {
 public:
  using Handler = FunctionRef<void(const MessageView&)>;
  /// A handler that may fail a message by returning an error (see RetryOptions).
  using CheckedHandler = FunctionRef<Result<void>(const MessageView&)>;

  Subscriber(Subscriber&&) noexcept;
  Subscriber& operator=(Subscriber&&) noexcept;
  ~Subscriber();

  /// Delivers up to `limit` waiting messages to `handler` without blocking; returns how many.
  std::size_t poll(Handler handler, std::size_t limit = 64);
  /// Like poll(), for a handler that reports failure by returning an error.
  std::size_t poll_checked(CheckedHandler handler, std::size_t limit = 64);

  /// Like poll(), but idles with the subscription's IdleStrategy until at least one
  /// message arrived or `timeout` passed (then returns 0).
  std::size_t wait_poll(Handler handler, std::size_t limit, std::chrono::nanoseconds timeout);
  std::size_t wait_poll_checked(CheckedHandler handler, std::size_t limit, std::chrono::nanoseconds timeout);

  /// Acknowledges everything from `publisher_id` up to `sequence` (auto_ack = false).
  /// Only messages already handed to the handler can be acknowledged. With handled_on_ack
  /// it also marks them handled in the state file (cumulative, like the ack).
  [[nodiscard]] Result<void> ack(std::uint64_t publisher_id, std::uint64_t sequence);

  /// Takes the next message as a Sample the caller keeps (no copy; on shm its chunk is
  /// held until the Sample is destroyed). Counts gaps like poll(); nullopt when none waits.
  [[nodiscard]] std::optional<Sample> take();
  /// Like take(), idling with the subscription's IdleStrategy up to `timeout`.
  [[nodiscard]] std::optional<Sample> wait_take(std::chrono::nanoseconds timeout);

  [[nodiscard]] const SubscriberStats& stats() const noexcept;
  /// Random id of this subscription (what a publisher reports as its blocker).
  [[nodiscard]] std::uint64_t id() const noexcept;

 private:
  friend class Node;
  explicit Subscriber(std::unique_ptr<detail::SubscriberCore> core);
  std::unique_ptr<detail::SubscriberCore> m_core;
};

}  // namespace rill
