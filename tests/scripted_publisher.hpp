// A scripted tcp publisher for subscriber-side tests: a bare ZeroMQ ROUTER speaking the
// tcp wire protocol (PROTOCOL.md), so every WELCOME, REJECT, resend and ACK is under the
// test's control and observable byte for byte; and loops that drive it beside a Subscriber.
#pragma once

#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "rill/message_builder.hpp"
#include "rill/rill.hpp"
#include "test_util.hpp"
#include "transport/tcp/tcp_wire.hpp"

namespace rilltest {

using namespace std::chrono_literals;
namespace wire = rill::detail::tcp;
using clock_type = std::chrono::steady_clock;

// What the scripted publisher heard from its subscriber.
struct Heard {
  bool subscribed = false;
  std::uint64_t subscription_id = 0;
  std::uint8_t durability = 0;
  std::string durable_name;
  std::uint8_t from = 0;
  std::vector<std::uint64_t> acks;  // ACK positions in arrival order
};

class ScriptedPublisher {
 public:
  static constexpr std::uint64_t id = 0x5eed5eed12345678;

  explicit ScriptedPublisher(const std::string& ep) {
    m_sock.set(zmq::sockopt::linger, 0);
    m_sock.bind(ep);
  }

  // Takes in what the subscriber sent (SUBSCRIBE, keepalives, ACK, UNSUBSCRIBE).
  void receive() {
    for (;;) {
      zmq::message_t peer, frame;
      if (!m_sock.recv(peer, zmq::recv_flags::dontwait)) return;
      if (!m_sock.recv(frame, zmq::recv_flags::dontwait)) return;
      const auto c = wire::decode_control({static_cast<const std::byte*>(frame.data()), frame.size()});
      if (!c) continue;
      if (c->type == wire::ControlType::subscribe) {
        if (c->subscribe.subscription_id != heard.subscription_id) {
          heard.subscribed = true;
          heard.subscription_id = c->subscribe.subscription_id;
          heard.durability = c->subscribe.durability;
          heard.durable_name = std::string(c->subscribe.durable_name);
          heard.from = c->subscribe.from;
          m_peer.assign(static_cast<const char*>(peer.data()), peer.size());
        }
      } else if (c->type == wire::ControlType::ack && c->ack.subscription_id == heard.subscription_id) {
        CHECK(c->ack.publisher_id == id);
        heard.acks.push_back(c->ack.seq);
      }
    }
  }

  void welcome(std::uint64_t next_seq, std::uint64_t lost = 0) {
    std::array<std::byte, wire::max_control_bytes> buf;
    send_to_peer({buf.data(), wire::encode_welcome(buf, {.publisher_id = id,
                                                         .next_seq = next_seq,
                                                         .subscription_id = heard.subscription_id,
                                                         .lost = lost,
                                                         .offered = 2})});
  }

  void reject() {
    std::array<std::byte, wire::max_control_bytes> buf;
    send_to_peer({buf.data(), wire::encode_reject(buf, {.publisher_id = id,
                                                        .subscription_id = heard.subscription_id,
                                                        .offered = 0,
                                                        .requested = 2,
                                                        .reason = "volatile publisher"})});
  }

  void data(std::uint64_t seq) {
    const auto text = "m" + std::to_string(seq);
    m_builder.reset();
    send_to_peer(
        m_builder.finish_raw(std::as_bytes(std::span(text.data(), text.size())),
                             {.topic = "t", .publisher_id = id, .sequence = seq, .timestamp_ns = 1, .headers = {}}));
  }

  Heard heard;

 private:
  void send_to_peer(std::span<const std::byte> frame) {
    REQUIRE(!m_peer.empty());
    m_sock.send(zmq::buffer(m_peer), zmq::send_flags::sndmore);
    m_sock.send(zmq::buffer(frame.data(), frame.size()));
  }

  zmq::context_t m_ctx;
  zmq::socket_t m_sock{m_ctx, zmq::socket_type::router};
  std::string m_peer;
  rill::MessageBuilder m_builder;
};

// Drives the subscriber and the scripted publisher until `done()` (10 s at most).
template <class Done>
bool pump(rill::Subscriber& sub, ScriptedPublisher& pub, rill::Subscriber::Handler h, Done done) {
  const auto deadline = clock_type::now() + 10s;
  while (clock_type::now() < deadline) {
    sub.wait_poll(h, 64, 2ms);
    pub.receive();
    if (done()) return true;
  }
  return false;
}

// Drives both for a fixed time: for asserting that something does NOT happen.
inline void pump_for(rill::Subscriber& sub, ScriptedPublisher& pub, rill::Subscriber::Handler h,
                     std::chrono::milliseconds t) {
  const auto until = clock_type::now() + t;
  while (clock_type::now() < until) {
    sub.wait_poll(h, 64, 2ms);
    pub.receive();
  }
}

inline rill::SubscriberOptions durable(const std::string& ep, const TempDir& dir, const std::string& name) {
  return {.endpoints = {ep},
          .prefix = "t",
          .policy = rill::Policy::backpressure(64),
          .durability = rill::Durability::persistent(),
          .durable_name = name,
          .state_dir = dir.str()};
}

inline const auto noop = [](const rill::MessageView&) {};

}  // namespace rilltest
