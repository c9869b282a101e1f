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
};

/// Receives on one thread. Move-only; not thread-safe (one polling thread).
class Subscriber {
 public:
  using Handler = FunctionRef<void(const MessageView&)>;

  Subscriber(Subscriber&&) noexcept;
  Subscriber& operator=(Subscriber&&) noexcept;
  ~Subscriber();

  /// Delivers up to `limit` waiting messages to `handler` without blocking; returns how many.
  std::size_t poll(Handler handler, std::size_t limit = 64);

  /// Like poll(), but idles with the subscription's IdleStrategy until at least one
  /// message arrived or `timeout` passed (then returns 0).
  std::size_t wait_poll(Handler handler, std::size_t limit, std::chrono::nanoseconds timeout);

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
