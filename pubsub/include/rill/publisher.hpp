// Publisher: stamps envelopes and sends them to every matching subscription.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "rill/loan.hpp"
#include "rill/log.hpp"
#include "rill/message_builder.hpp"
#include "rill/policy.hpp"
#include "rill/stats.hpp"

namespace rill {

namespace detail {
class PublisherTransport;
struct LoanState;
class NodeCore;
class History;
class IdleService;
}  // namespace detail

/// How a publisher behaves; fill with designated initializers.
struct PublisherOptions {
  std::string endpoint;                             ///< e.g. "tcp://127.0.0.1:5555" (bound)
  std::string topic;                                ///< the one topic this publisher sends on
  std::chrono::milliseconds publish_timeout{1000};  ///< longest publish() waits for backpressure credit
  std::size_t max_message_bytes = 64u << 20;        ///< larger envelopes are refused with too_large
  /// Throughput mode: coalesce up to this many messages into one transport frame
  /// (1 = every publish() is sent at once). Held-back messages go out when the batch is
  /// full, at flush(), service() or destruction; call flush() when you pause.
  std::size_t batch_messages = 1;
  std::size_t batch_bytes = 64u << 10;  ///< a batch is also sent once it holds this many bytes
  /// What late joiners get (tcp, shm and reliable udp offer all three; `rill transports`):
  /// transient_local(N) keeps the last N messages in memory; persistent(DIR) appends every
  /// message to the log in DIR before it is sent, and the publisher's id and sequence
  /// continue from that log after a restart.
  Durability durability{};
  /// persistent: the log's settings (fsync policy, segment size, retention).
  LogOptions log{};
  /// persistent: where durable subscriptions' acknowledged positions are stored
  /// ("" = DIR/acks).
  std::string ack_store{};
  /// transient_local / persistent, and reliable udp: when publish() (or any call) has not been
  /// made for this long, a helper thread calls service(), so late joiners and durable
  /// subscriptions catch up, and udp heartbeats and NAK answers go on, from an idle publisher.
  /// 0: no helper (then call service() yourself while idle).
  std::chrono::milliseconds idle_service{5};
};

/// Sends on one topic from one thread. Move-only; not thread-safe (one publishing
/// thread). Sequence numbers start at 1 and only advance when a message was sent.
class Publisher {
 public:
  Publisher(Publisher&&) noexcept;
  Publisher& operator=(Publisher&&) noexcept;
  /// Tells subscribers the last sequence sent (so they can count a lost tail), then closes.
  ~Publisher();

  /// Starts a message: returns the FlatBufferBuilder to build the payload table in.
  [[nodiscard]] flatbuffers::FlatBufferBuilder& start() noexcept {
    m_builder.reset();
    return m_builder.fbb();
  }

  /// Publishes the payload table `root` built in start()'s builder, in place.
  /// Returns timed_out (and sends nothing) if backpressure held it past the deadline.
  template <class T>
  [[nodiscard]] Result<void> publish(flatbuffers::Offset<T> root, std::span<const HeaderKV> headers = {}) {
    return send_built(m_builder.finish(root, stamp(headers)));
  }

  /// Borrows memory for one message with about `payload_bytes` of payload, to build in
  /// place (zero copy on shm). Fails with exhausted if the transport has none free in time.
  [[nodiscard]] Result<Loan> loan(std::size_t payload_bytes);

  /// Publishes the payload table `root` built in `loan.fbb()`, where it lies.
  template <class T>
  [[nodiscard]] Result<void> publish(Loan&& loan, flatbuffers::Offset<T> root, std::span<const HeaderKV> headers = {}) {
    return publish_loan(std::move(loan), root.o, headers);
  }
  /// Publishes the raw payload written into `loan.raw(size)`.
  [[nodiscard]] Result<void> publish(Loan&& loan, std::span<const HeaderKV> headers = {}) {
    return publish_loan(std::move(loan), 0, headers);
  }

  /// Publishes raw payload bytes.
  [[nodiscard]] Result<void> publish_bytes(std::span<const std::byte> payload, std::span<const HeaderKV> headers = {});
  /// Publishes text as raw payload bytes.
  [[nodiscard]] Result<void> publish_text(std::string_view text, std::span<const HeaderKV> headers = {}) {
    return publish_bytes(std::as_bytes(std::span(text.data(), text.size())), headers);
  }

  /// Sends messages a batching publisher is holding back (no-op with batch_messages = 1).
  void flush();
  /// Flushes, then processes joins, credits, acks and departures, and sends history to
  /// subscriptions catching up (a durable subscription replaying a long log is served from
  /// here and from publish()). The helper thread of a durable or reliable udp publisher
  /// (idle_service) calls it while the application does not; without one, call it while idle.
  std::size_t service();
  /// Waits until `n` matching subscriptions are attached, up to `timeout`.
  [[nodiscard]] Result<std::size_t> wait_for_subscribers(std::size_t n, std::chrono::milliseconds timeout);

  [[nodiscard]] const PublisherStats& stats() const noexcept;
  [[nodiscard]] std::uint64_t id() const noexcept { return m_id; }
  [[nodiscard]] const std::string& topic() const noexcept { return m_topic; }
  /// The sequence the next published message will carry.
  [[nodiscard]] std::uint64_t next_sequence() const noexcept { return m_next_seq; }
  /// The durability this publisher offers.
  [[nodiscard]] DurabilityKind durability() const noexcept;
  /// persistent: the log (for its stats and sequences); nullptr otherwise.
  [[nodiscard]] const Log* log() const noexcept;
  /// persistent: waits until every message published so far is durable in the log
  /// (fdatasync'ed), whatever its fsync policy; a no-op for the other durabilities. For
  /// callers that acknowledge their own source only once its data is safe (rill cdc).
  [[nodiscard]] Result<void> sync();

 private:
  friend class Node;
  Publisher(std::shared_ptr<detail::NodeCore> node, std::unique_ptr<detail::History> history,
            std::unique_ptr<detail::PublisherTransport> transport, const PublisherOptions& options, std::uint64_t id);

  EnvelopeFields stamp(std::span<const HeaderKV> headers) const noexcept;
  Result<void> send_built(std::span<const std::byte> envelope);
  Result<void> send_kept(std::span<const std::byte> envelope);
  Result<void> publish_loan(Loan&& loan, flatbuffers::uoffset_t root, std::span<const HeaderKV> headers);

  std::shared_ptr<detail::NodeCore> m_node;
  std::unique_ptr<detail::History> m_history;  // before the transport: it reads from it until closed
  std::unique_ptr<detail::PublisherTransport> m_transport;
  MessageBuilder m_builder;
  std::unique_ptr<detail::LoanState> m_spare_loan;  // reused, so loans allocate nothing
  std::unique_ptr<detail::IdleService> m_idle;      // durable: services the transport while we are idle
  mutable PublisherStats m_stats_copy;              // what stats() returns (read under m_idle)
  std::string m_topic;
  std::uint64_t m_id = 0;
  std::uint64_t m_next_seq = 1;
  mutable std::int64_t m_stamp_ns = 0;  // the last stamp()'s timestamp
  std::chrono::milliseconds m_timeout{1000};
  std::size_t m_max_bytes = 0;
};

}  // namespace rill
