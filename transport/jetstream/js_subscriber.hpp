// The receiving side of jetstream://: a JetStream push consumer per subscription.
// volatile -> an ordered ephemeral consumer (new messages only; it re-creates itself
// after a node loss); durable_name -> a durable consumer with explicit acks; group ->
// one durable consumer shared by every member (a queue subscription), so the stream
// splits its messages between them, on any host.
//
// A publisher resends what a lost node never confirmed, so the stream may hold a
// publisher's messages out of order; each publisher's messages are handed on in sequence
// order (held back until the missing ones arrive, or `reorder_ms` passes).
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "js_connection.hpp"
#include "transport/transport.hpp"

namespace rill::detail::js {

class JsSubscriber final : public SubscriberTransport {
 public:
  [[nodiscard]] static Result<std::unique_ptr<SubscriberTransport>> create(std::span<const Endpoint> eps,
                                                                           const SubscriberConfig& config);
  ~JsSubscriber() override;

  // SubscriberTransport: called from the polling thread only (see transport.hpp).
  std::size_t drain(FrameSink& sink, std::size_t max) override;
  void wait(std::chrono::nanoseconds timeout) override;
  bool consumed(std::uint32_t source, std::uint64_t publisher_id, std::uint32_t n) override;
  bool ack(std::uint32_t source, std::uint64_t publisher_id, std::uint64_t seq) override;
  void service(std::chrono::steady_clock::time_point now) override;

 private:
  JsSubscriber(JsOptions options, const SubscriberConfig& config);
  Result<void> subscribe();
  // Takes one message from the client: acks bookkeeping, topic filter, reordering.
  void intake(natsMsg* msg);
  // Hands held messages on whose wait is over (their predecessors are not coming).
  void release_overdue(std::chrono::steady_clock::time_point now);
  void send_ack(const std::string& reply);

  struct Held {
    natsMsg* msg = nullptr;
    std::chrono::steady_clock::time_point since{};
  };
  struct Order {  // one publisher's sequence as it arrives
    std::uint64_t publisher_id = 0;
    std::uint64_t next = 0;   // the sequence handed on next (0: none seen yet)
    std::uint64_t acked = 0;  // acknowledged up to here (redeliveries below it are acked at once)
    std::map<std::uint64_t, Held> held;
  };
  struct PendingAck {
    std::uint64_t publisher_id = 0;
    std::uint64_t seq = 0;
    std::string reply;  // the message's ack subject
    bool done = false;
  };
  Order& order(std::uint64_t publisher_id);
  // A durable consumer that had unacknowledged messages when we bound to it: the stream
  // redelivers those only after ack_wait, behind newer ones. Until they are back (or
  // ack_wait has passed) everything is held, then each publisher starts at its lowest.
  void end_startup();
  [[nodiscard]] bool in_startup(std::chrono::steady_clock::time_point now) const noexcept {
    return m_startup_redeliveries > 0 && now < m_startup_until;
  }
  void release_in_order(Order& o);

  JsOptions m_options;
  SubscriberConfig m_config;
  std::unique_ptr<JsConnection> m_conn;
  natsSubscription* m_sub = nullptr;
  bool m_acks = false;                                  // durable or group: explicit acks
  bool m_group = false;                                 // members get subsets: no reordering, acks by arrival
  std::size_t m_window = static_cast<std::size_t>(-1);  // backpressure: frames handed on, not yet consumed
  std::size_t m_in_flight = 0;
  std::deque<natsMsg*> m_ready;  // in order, waiting for drain()
  std::vector<Order> m_orders;
  std::deque<PendingAck> m_pending;         // delivered, not yet acknowledged (arrival order)
  std::uint64_t m_foreign = 0;              // messages on subjects outside the prefix (acked, skipped)
  std::int64_t m_startup_redeliveries = 0;  // unacknowledged at bind time, not yet redelivered
  std::chrono::steady_clock::time_point m_startup_until{};
};

}  // namespace rill::detail::js
