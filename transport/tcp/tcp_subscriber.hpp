// The tcp receiving side: one ZeroMQ DEALER per publisher endpoint.
#pragma once

#include <chrono>
#include <vector>

#include <zmq.hpp>

#include "transport/transport.hpp"

namespace rill::detail::tcp {

/// See SubscriberTransport for the threading rule: one polling thread.
class TcpSubscriber final : public SubscriberTransport {
 public:
  static Result<std::unique_ptr<SubscriberTransport>> create(NodeCore& node, std::span<const Endpoint> eps,
                                                             const SubscriberConfig& config);
  ~TcpSubscriber() override;

  std::size_t drain(FrameSink& sink, std::size_t max) override;
  void wait(std::chrono::nanoseconds timeout) override;
  bool consumed(std::uint32_t source, std::uint64_t publisher_id, std::uint32_t n) override;
  bool ack(std::uint32_t source, std::uint64_t publisher_id, std::uint64_t seq) override;
  void service(std::chrono::steady_clock::time_point now) override;

 private:
  struct Connection {
    zmq::socket_t sock;
    bool welcomed = false;
    bool rejected = false;  // the publisher refused our durability request
    std::chrono::steady_clock::time_point next_subscribe{};
    // curve only: libzmq's handshake events for this socket, to say why nothing arrives.
    zmq::socket_t monitor{};
    bool secured = false;              // a handshake succeeded since the last report
    bool reported = false;             // this failing run was reported
    int dropped_in_handshake = 0;      // connections closed mid-handshake since the last success
    // libzmq gives up on a connection the peer refused (no reconnect): we connect again at
    // this time, so a key added to the allow list later is let in. max(): not due.
    std::chrono::steady_clock::time_point reconnect_at = std::chrono::steady_clock::time_point::max();
    std::string address;
  };

  explicit TcpSubscriber(const SubscriberConfig& config) : m_config(config) {}
  std::size_t drain_one(std::uint32_t index, FrameSink& sink, std::size_t max);
  void handle_control(std::uint32_t index, std::span<const std::byte> frame, FrameSink& sink);
  std::size_t split_batch(std::uint32_t index, Frame& batch, FrameSink& sink);
  /// Reads connection `index`'s handshake events; reports a failure to `sink` once per run.
  void read_handshake_events(std::uint32_t index, FrameSink& sink);

  SubscriberConfig m_config;
  std::vector<Connection> m_conns;
  std::vector<zmq_pollitem_t> m_items;
  std::uint32_t m_next_conn = 0;  // round-robin start, so one busy publisher cannot starve another
};

}  // namespace rill::detail::tcp
