// Non-blocking IPv4 UDP sockets for the multicast transport: the publisher's socket
// (sends to the group, receives control), a subscriber's group socket and its
// unicast control socket. Batched I/O with sendmmsg/recvmmsg.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>

#include "udp_auth.hpp"
#include "udp_options.hpp"

namespace rill::detail::udp {

/// Owns one socket fd. Move-only; not thread-safe.
class UdpSocket {
 public:
  UdpSocket() = default;
  explicit UdpSocket(int fd) noexcept : m_fd(fd) {}
  UdpSocket(UdpSocket&& o) noexcept : m_fd(o.m_fd), m_sealer(std::move(o.m_sealer)) { o.m_fd = -1; }
  UdpSocket& operator=(UdpSocket&& o) noexcept;
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;
  ~UdpSocket();

  /// Bound to iface:0 (an ephemeral port: the control address), sending to the group
  /// through iface with the endpoint's ttl and loop settings.
  [[nodiscard]] static Result<UdpSocket> open_sender(const UdpOptions& o);
  /// Bound to group:port (shared with other subscribers on the host) and joined on iface.
  [[nodiscard]] static Result<UdpSocket> open_group(const UdpOptions& o);
  /// Bound to iface:0: where a subscriber sends control from and gets answers.
  /// `receive_bytes`: its receive buffer (a durable subscription's history arrives here).
  [[nodiscard]] static Result<UdpSocket> open_control(const UdpOptions& o, int receive_bytes = 1 << 20);

  [[nodiscard]] int fd() const noexcept { return m_fd; }
  /// From now on every datagram sent carries the authentication trailer (PROTOCOL.md 10.13),
  /// scoped to the group when sent to a multicast address, else unicast.
  void authenticate(std::shared_ptr<const AuthKeys> keys) { m_sealer = std::make_unique<Sealer>(std::move(keys)); }
  [[nodiscard]] sockaddr_in local_address() const noexcept;

  /// One datagram; false when the kernel refused it now (full buffer) or failed.
  bool send_to(std::span<const std::byte> dgram, const sockaddr_in& to) const noexcept;
  /// Up to `n` prepared messages (one iovec each) in one call; returns how many went
  /// (0 on EAGAIN; authenticated, at most Sealer::batch).
  int send_batch(mmsghdr* msgs, unsigned n) const noexcept;
  /// Up to `n` datagrams in one call without waiting; returns how many (0: none).
  int recv_batch(mmsghdr* msgs, unsigned n) const noexcept;

 private:
  int m_fd = -1;
  std::unique_ptr<Sealer> m_sealer;  // set: every send is authenticated
};

/// Waits until one of `fds` is readable or `timeout` passes.
void wait_readable(std::span<const int> fds, std::chrono::nanoseconds timeout) noexcept;

/// Two addresses are the same IPv4 address and port.
[[nodiscard]] inline bool same_address(const sockaddr_in& a, const sockaddr_in& b) noexcept {
  return a.sin_addr.s_addr == b.sin_addr.s_addr && a.sin_port == b.sin_port;
}

}  // namespace rill::detail::udp
