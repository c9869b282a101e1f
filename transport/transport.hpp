// The small interface every transport implements (tcp, shm, udp: one folder each), and the
// table that registers them by URI scheme. Modelled on nng's sp/transport.h: each method
// states who may call it and when.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "policies/frame.hpp"
#include "rill/endpoint.hpp"
#include "rill/error.hpp"
#include "rill/policy.hpp"
#include "rill/stats.hpp"

namespace rill::detail {

class NodeCore;
class History;

/// What a publisher asks of its transport.
struct PublisherConfig {
  std::string topic;
  std::uint64_t publisher_id = 0;
  std::size_t max_message_bytes = 64u << 20;
  std::size_t batch_messages = 1;       ///< >1: coalesce up to this many envelopes per frame
  std::size_t batch_bytes = 64u << 10;  ///< ... or until a batch frame holds this many bytes
  std::chrono::nanoseconds publish_timeout = std::chrono::seconds(1);  ///< also bounds waits for a loan
  /// transient_local / persistent: the messages kept for late joiners and durable
  /// subscriptions, and their acks (owned by the Publisher; outlives the transport's
  /// close()). nullptr: volatile. A transport that cannot serve history refuses to be
  /// created with one (unsupported).
  History* history = nullptr;
};

/// What a subscriber asks of its transport.
struct SubscriberConfig {
  std::string prefix;
  Policy policy;
  std::uint64_t subscription_id = 0;
  std::size_t max_message_bytes = 64u << 20;
  Durability durability{};  ///< requested (history: at most this many for transient_local)
  std::string durable_name;
  StartFrom from = StartFrom::last_ack;
  std::string group;
};

/// Transport memory lent to a publisher to build one message in place (zero copy).
struct LoanedChunk {
  std::byte* data = nullptr;  ///< 8-aligned; its end is 64-aligned
  std::size_t capacity = 0;
  std::uint32_t handle = 0;
};

/// Sending side. Owned by one Publisher; every method is called from the thread
/// that publishes (not thread-safe), and none calls user code.
class PublisherTransport {
 public:
  virtual ~PublisherTransport() = default;

  /// Sends one finished envelope (sequence `seq`) to every matching subscriber. Waits
  /// up to `timeout` for backpressure credit; returns timed_out if it is still
  /// missing then, and nothing was sent to anyone. The bytes are copied or not
  /// retained past the call.
  virtual Result<void> send(std::span<const std::byte> envelope, std::uint64_t seq,
                            std::chrono::nanoseconds timeout) = 0;

  /// Waits up to `timeout` until send() would not wait for backpressure credit
  /// (a durable publisher keeps a message only once it can be sent). timed_out otherwise.
  [[nodiscard]] virtual Result<void> reserve(std::chrono::nanoseconds timeout) {
    (void)timeout;
    return {};
  }

  /// Lends at least `bytes` of the memory messages are sent from. Transports that
  /// copy anyway say unsupported (the publisher then builds on the heap).
  [[nodiscard]] virtual Result<LoanedChunk> loan(std::size_t bytes) {
    (void)bytes;
    return fail(Errc::unsupported, "this transport lends no memory");
  }
  /// Takes back a loan that will not be sent.
  virtual void unloan(std::uint32_t handle) noexcept { (void)handle; }
  /// Like send(), for an envelope built inside loan `handle`; the loan is consumed
  /// whatever the outcome (on timed_out nothing was sent and the memory is reused).
  [[nodiscard]] virtual Result<void> send_loan(std::uint32_t handle, std::span<const std::byte> envelope,
                                               std::uint64_t seq, std::chrono::nanoseconds timeout) {
    (void)handle;
    return send(envelope, seq, timeout);
  }

  /// Sends what a batching publisher holds back (no-op without batching).
  virtual void flush() = 0;

  /// Sends any held-back batch and processes joins, credits and departures; returns
  /// subscribers now attached.
  virtual std::size_t service() = 0;

  /// True when a quiet publisher breaks a promise unless service() keeps being called (reliable
  /// udp: heartbeats that reveal a lost tail, NAK answers). The Publisher then runs its idle
  /// helper (as for every durable publisher) so the application need not. Called once, at creation.
  [[nodiscard]] virtual bool needs_idle_service() const noexcept { return false; }

  /// Waits until at least `n` subscriptions are attached, or `deadline`.
  virtual Result<std::size_t> wait_for_subscribers(std::size_t n, std::chrono::steady_clock::time_point deadline) = 0;

  /// Tells subscribers this publisher is leaving after sequence `last_seq`.
  virtual void close(std::uint64_t last_seq) = 0;

  [[nodiscard]] virtual const PublisherStats& stats() const = 0;
};

/// Receives what SubscriberTransport::drain finds.
class FrameSink {
 public:
  /// One data frame (an unverified envelope) from connection `frame.source()`.
  virtual void on_data(Frame&& frame) = 0;
  /// A publisher greeted this subscription: its messages start at `next_seq` (history
  /// first, for a durable request); `lost` messages before next_seq that the subscription
  /// asked for were deleted by retention. `instance` names the bound endpoint the publisher
  /// lives on (all publishers sharing one tcp socket or one shm directory have the same);
  /// a connection whose instance changes has a restarted endpoint behind it. 0: the
  /// transport cannot tell (udp multicast, where independent processes share a group).
  virtual void on_welcome(std::uint32_t source, std::uint64_t publisher_id, std::uint64_t next_seq,
                          std::uint64_t lost, std::uint64_t instance) = 0;
  /// A publisher refused this subscription (it asked for more durability than offered).
  virtual void on_reject(std::uint32_t source, std::uint64_t publisher_id, DurabilityKind offered,
                         DurabilityKind requested, std::string_view reason) = 0;
  /// A publisher left after `last_seq`.
  virtual void on_bye(std::uint32_t source, std::uint64_t publisher_id, std::uint64_t last_seq) = 0;
  /// A publisher's process died after `last_seq` (it never said goodbye); by default
  /// treated like a goodbye.
  virtual void on_lost(std::uint32_t source, std::uint64_t publisher_id, std::uint64_t last_seq) {
    on_bye(source, publisher_id, last_seq);
  }
  /// A frame that could not be used; `code` says why (malformed, too_large).
  virtual void on_bad_frame(std::uint32_t source, Errc code, std::size_t size) = 0;
  /// A datagram failed authentication (udp with auth_key_file: forged, replayed, or
  /// unauthenticated; or authenticated while this endpoint has no key) and was dropped
  /// before anything read it. `why` names the check.
  virtual void on_auth_rejected(std::uint32_t source, std::size_t size, std::string_view why) {
    (void)source;
    (void)size;
    (void)why;
  }
  /// The secure handshake with `source` failed (tcp curve: our key refused, a wrong server
  /// key, a publisher without CURVE); `reason` says which. Once per failing run: the
  /// transport keeps retrying, and says so again only after a handshake succeeded.
  virtual void on_security_error(std::uint32_t source, std::string_view reason) {
    (void)source;
    (void)reason;
  }

 protected:
  ~FrameSink() = default;
};

/// Receiving side. Owned by one Subscriber; every method is called from the thread
/// that polls (not thread-safe), and none calls user code except through the sink.
class SubscriberTransport {
 public:
  virtual ~SubscriberTransport() = default;

  /// Moves up to `max` available frames into `sink` without blocking; returns the
  /// number of data frames delivered.
  virtual std::size_t drain(FrameSink& sink, std::size_t max) = 0;

  /// Blocks until input may be ready or `timeout` passes (the block idle strategy).
  virtual void wait(std::chrono::nanoseconds timeout) = 0;

  /// The handler finished `n` messages from `source` sent by `publisher_id`: give
  /// that publisher the window back (backpressure). False when it could not be queued
  /// now (the caller keeps the count and tries again later).
  virtual bool consumed(std::uint32_t source, std::uint64_t publisher_id, std::uint32_t n) = 0;

  /// A durable subscription handled everything `publisher_id` sent it up to `seq`: tell
  /// that publisher (it stores the position). False when it could not be queued now.
  virtual bool ack(std::uint32_t source, std::uint64_t publisher_id, std::uint64_t seq) {
    (void)source;
    (void)publisher_id;
    (void)seq;
    return true;
  }

  /// Housekeeping (subscription keepalive, reconnect handling); cheap when nothing is due.
  virtual void service(std::chrono::steady_clock::time_point now) = 0;

  /// True when each publisher grants a backpressure window of its own (udp: independent
  /// publishers share a group); false when the publishers behind one connection share one
  /// (tcp). The subscriber's queue then holds a window per publisher.
  [[nodiscard]] virtual bool window_per_publisher() const noexcept { return false; }

  /// True when the transport itself queues per this subscription's policy (shm: the
  /// ring is the queue). The core then takes one message at a time and queues nothing.
  [[nodiscard]] virtual bool applies_policy() const noexcept { return false; }
  /// True when the user asked to trust this transport's memory (shm ?verify=0): the
  /// FlatBuffers verifier is skipped; a corrupted segment can then crash the reader.
  [[nodiscard]] virtual bool trusted() const noexcept { return false; }
  /// Messages the transport's own policy discarded for this subscription so far.
  [[nodiscard]] virtual std::uint64_t policy_drops() const noexcept { return 0; }
  /// True once a buffer policy applied by the transport passed its byte limit.
  [[nodiscard]] virtual bool policy_overflowed() const noexcept { return false; }
};

/// An endpoint kept bound while no publisher is on it (Node::bind), so subscribers can
/// connect before the first topic exists. Thread-safe.
class EndpointHold {
 public:
  virtual ~EndpointHold() = default;
  /// Subscriptions connected to the endpoint now (whatever their prefix).
  [[nodiscard]] virtual std::size_t subscriptions() = 0;
};

/// What a transport can carry (`rill transports` prints it); the shared code refuses what a
/// transport cannot do by these, never by its name.
struct TransportCaps {
  bool zero_copy_loans = false;  ///< loan() hands out the memory the message is sent from
  bool history = false;          ///< transient_local / persistent publishers, durable subscriptions
  bool groups = false;           ///< consumer groups
  bool backpressure = false;     ///< backpressure(N) slows the publisher to the subscriber
};

/// One compiled transport. Each transport folder defines one (`tcp_transport` in
/// transport/tcp/tcp_transport.cpp, ...); CMakeLists.txt writes the table listing them.
struct TransportEntry {
  std::string_view scheme;   ///< the endpoint URI scheme it serves
  std::string_view summary;  ///< one line for `rill transports`
  std::string_view notes;    ///< limits worth knowing (may be empty)
  TransportCaps caps;
  Result<std::unique_ptr<PublisherTransport>> (*make_publisher)(NodeCore& node, const Endpoint& ep,
                                                                const PublisherConfig& config);
  Result<std::unique_ptr<SubscriberTransport>> (*make_subscriber)(NodeCore& node, std::span<const Endpoint> eps,
                                                                  const SubscriberConfig& config);
  /// Binds `ep` with no publisher on it yet (and keeps it bound while the hold lives);
  /// nullptr: nothing to bind (udp: subscribers listen on the group themselves).
  Result<std::shared_ptr<EndpointHold>> (*hold)(NodeCore& node, const Endpoint& ep) = nullptr;
};

/// The transports compiled into this build, nullptr-terminated (generated transport_table.cpp).
extern const TransportEntry* const compiled_transports[];

/// The compiled transport serving `scheme`, or nullptr.
[[nodiscard]] const TransportEntry* find_transport(std::string_view scheme) noexcept;

/// A new endpoint instance id (random, never 0): what a subscriber compares to tell a
/// restarted endpoint from the one it knew (FrameSink::on_welcome).
[[nodiscard]] std::uint64_t new_endpoint_instance();

/// Keeps `ep` bound with no publisher (Node::bind); a null hold when the transport needs none.
Result<std::shared_ptr<EndpointHold>> hold_endpoint(NodeCore& node, const Endpoint& ep);

/// Creates the sending side for `ep` (dispatches on ep.scheme).
Result<std::unique_ptr<PublisherTransport>> make_publisher_transport(NodeCore& node, const Endpoint& ep,
                                                                     const PublisherConfig& config);
/// Creates the receiving side connected to every endpoint in `eps` (same scheme).
Result<std::unique_ptr<SubscriberTransport>> make_subscriber_transport(NodeCore& node,
                                                                       std::span<const Endpoint> eps,
                                                                       const SubscriberConfig& config);

}  // namespace rill::detail
