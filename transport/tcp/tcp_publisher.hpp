// The tcp sending side: a ZeroMQ ROUTER that keeps one policy state per subscriber.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "../../pubsub/history.hpp"
#include "../transport.hpp"
#include "tcp_wire.hpp"

namespace rill::detail::tcp {

/// See PublisherTransport for the threading rule: one publishing thread.
class TcpPublisher final : public PublisherTransport {
 public:
  static Result<std::unique_ptr<PublisherTransport>> create(NodeCore& node, const Endpoint& ep,
                                                            const PublisherConfig& config);
  ~TcpPublisher() override;

  Result<void> send(std::span<const std::byte> envelope, std::uint64_t seq,
                    std::chrono::nanoseconds timeout) override;
  Result<void> reserve(std::chrono::nanoseconds timeout) override;
  void flush() override;
  std::size_t service() override;
  Result<std::size_t> wait_for_subscribers(std::size_t n, std::chrono::steady_clock::time_point deadline) override;
  void close(std::uint64_t last_seq) override;
  [[nodiscard]] const PublisherStats& stats() const override { return m_stats; }

 private:
  struct Peer {
    std::string routing_id;
    std::uint64_t subscription_id = 0;
    PolicyKind policy = PolicyKind::drop_oldest;
    std::uint32_t window = 0;
    std::int64_t credit = 0;  // backpressure only: messages it may still be sent
    bool matches = false;     // its prefix matches our topic
    bool dead = false;
    std::chrono::steady_clock::time_point last_seen;
    // Durability: a late joiner or durable subscription is sent history first, by its
    // cursor, and nothing live until the cursor reaches the live sequence.
    std::unique_ptr<HistoryCursor> cursor;
    std::vector<std::byte> held;  // a history frame the pipe had no room for (sent first next time)
    std::uint32_t held_count = 0;
    std::string durable_name;     // persistent: acks are stored under it
    std::uint64_t acked = 0;      // highest seq it acknowledged
    [[nodiscard]] bool catching_up() const noexcept { return cursor != nullptr || held_count > 0; }
  };


  TcpPublisher(zmq::socket_t sock, const PublisherConfig& config);

  void drain_control();
  void handle_control(std::string_view routing_id, std::span<const std::byte> frame);
  bool send_control(const std::string& routing_id, std::span<const std::byte> frame);
  Result<void> wait_for_credit(std::int64_t needed, std::chrono::steady_clock::time_point deadline);
  [[nodiscard]] const Peer* blocking_peer(std::int64_t needed) const noexcept;
  void send_frame(std::span<const std::byte> frame, std::uint32_t envelopes);
  void append_to_batch(std::span<const std::byte> envelope);
  void expire_peers(std::chrono::steady_clock::time_point now);
  void remove_dead_peers();
  // Durability (tcp_publisher_history.cpp).
  std::uint64_t history_start(Peer& peer, const Subscribe& s, std::uint64_t& lost);
  void reject(std::string_view routing_id, const Subscribe& s, DurabilityKind offered, std::string_view reason);
  void pump_history(bool publishing);
  bool pump_peer(Peer& peer, unsigned frame_budget);
  bool send_to(Peer& peer, std::span<const std::byte> frame, std::uint32_t envelopes);
  void handle_ack(Peer& peer, const Ack& ack);

  zmq::socket_t m_sock;
  PublisherConfig m_config;
  PublisherStats m_stats;
  std::vector<Peer> m_peers;
  History* m_history = nullptr;
  std::size_t m_catching_up = 0;  // peers with a cursor or a held frame
  std::uint64_t m_last_rejected = 0;
  std::uint64_t m_next_seq = 1;
  // Batching: envelopes held back in one frame (sent before any new subscription is
  // registered, so a batch only ever goes to the subscriptions it was built for).
  std::vector<std::byte> m_batch;
  std::uint32_t m_batch_count = 0;
  unsigned m_service_countdown = 0;
  bool m_has_backpressure = false;  // any matching peer uses backpressure
  bool m_bad_control_logged = false;
  bool m_closed = false;
};

}  // namespace rill::detail::tcp
