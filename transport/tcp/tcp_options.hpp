// Socket settings shared by both tcp sides.
#pragma once

#include <cstddef>

#include <zmq.hpp>

namespace rill::detail::tcp {

/// Messages a peer's pipe holds before a drop-policy peer is skipped (per peer).
inline constexpr int pipe_high_water = 131072;
/// A subscriber re-sends its subscription this often; it doubles as a keepalive.
inline constexpr int keepalive_ms = 200;
/// Until welcomed, the subscription is retried this often.
inline constexpr int subscribe_retry_ms = 10;
/// A refused subscription asks again this often (the publisher may restart with more durability).
inline constexpr int reject_retry_ms = 1000;
/// A subscriber silent for this long is considered gone by its publisher.
inline constexpr int peer_timeout_ms = 3000;
/// How long closing sockets keep trying to deliver what is queued (data, BYE).
inline constexpr int linger_ms = 2000;

/// Dead TCP connections are found by the kernel's keepalive (idle 5 s, then 3 probes 1 s
/// apart), not by ZMTP heartbeats: libzmq 4.3.4 (Debian 12) can abort on
/// `!_io_error` in stream_engine_base.cpp when a heartbeat-enabled connection is torn down
/// under load, which would take the user's process with it.
inline void set_keepalive(zmq::socket_t& sock) {
  sock.set(zmq::sockopt::tcp_keepalive, 1);
  sock.set(zmq::sockopt::tcp_keepalive_idle, 5);
  sock.set(zmq::sockopt::tcp_keepalive_intvl, 1);
  sock.set(zmq::sockopt::tcp_keepalive_cnt, 3);
}

}  // namespace rill::detail::tcp
