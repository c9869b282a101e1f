#include "udp_socket.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

namespace rill::detail::udp {

namespace {

Result<UdpSocket> make_socket() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(Errc::io_error, "udp: socket()", errno);
  return UdpSocket(fd);
}

Result<void> option(int fd, int level, int name, const void* value, socklen_t len, const char* what) {
  if (::setsockopt(fd, level, name, value, len) != 0)
    return fail(Errc::io_error, std::string("udp: setsockopt ") + what, errno);
  return {};
}

void buffer_size(int fd, int force_name, int name, int bytes) {
  // As root the FORCE variant passes net.core.rmem_max/wmem_max; otherwise the kernel
  // caps the request, which is still the best available.
  if (::setsockopt(fd, SOL_SOCKET, force_name, &bytes, sizeof bytes) != 0) {
    ::setsockopt(fd, SOL_SOCKET, name, &bytes, sizeof bytes);
  }
}

Result<void> bind_to(int fd, in_addr addr, std::uint16_t port, const UdpOptions& o) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr = addr;
  sa.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    const int err = errno;
    return fail(err == EADDRINUSE ? Errc::address_in_use : Errc::io_error, "udp: cannot bind " + to_string(addr, port),
                err);
  }
  (void)o;
  return {};
}

}  // namespace

UdpSocket& UdpSocket::operator=(UdpSocket&& o) noexcept {
  if (this != &o) {
    if (m_fd >= 0) ::close(m_fd);
    m_fd = o.m_fd;
    m_sealer = std::move(o.m_sealer);
    o.m_fd = -1;
  }
  return *this;
}

UdpSocket::~UdpSocket() {
  if (m_fd >= 0) ::close(m_fd);
}

Result<UdpSocket> UdpSocket::open_sender(const UdpOptions& o) {
  auto s = make_socket();
  if (!s) return s;
  const int fd = s->fd();
  buffer_size(fd, SO_SNDBUFFORCE, SO_SNDBUF, o.sndbuf);
  buffer_size(fd, SO_RCVBUFFORCE, SO_RCVBUF, 1 << 20);
  const unsigned char ttl = static_cast<unsigned char>(o.ttl);
  const unsigned char loop = o.loop ? 1 : 0;
  if (auto r = option(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl, "IP_MULTICAST_TTL"); !r)
    return std::unexpected(r.error());
  if (auto r = option(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop, "IP_MULTICAST_LOOP"); !r)
    return std::unexpected(r.error());
  if (o.iface.s_addr != INADDR_ANY) {
    if (auto r = option(fd, IPPROTO_IP, IP_MULTICAST_IF, &o.iface, sizeof o.iface, "IP_MULTICAST_IF (iface)"); !r) {
      return std::unexpected(r.error());
    }
  }
  if (auto r = bind_to(fd, o.iface, 0, o); !r) return std::unexpected(r.error());
  if (o.auth) s->authenticate(o.auth);
  return s;
}

Result<UdpSocket> UdpSocket::open_group(const UdpOptions& o) {
  auto s = make_socket();
  if (!s) return s;
  const int fd = s->fd();
  const int one = 1;
  if (auto r = option(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one, "SO_REUSEADDR"); !r)
    return std::unexpected(r.error());
  buffer_size(fd, SO_RCVBUFFORCE, SO_RCVBUF, o.rcvbuf);
  // Bound to the group address, the socket sees only this group's datagrams on the port.
  if (auto r = bind_to(fd, o.group, o.port, o); !r) return std::unexpected(r.error());
  ip_mreq mreq{};
  mreq.imr_multiaddr = o.group;
  mreq.imr_interface = o.iface;
  if (auto r = option(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq, "IP_ADD_MEMBERSHIP (join on iface)"); !r) {
    return std::unexpected(r.error());
  }
  return s;
}

Result<UdpSocket> UdpSocket::open_control(const UdpOptions& o, int receive_bytes) {
  auto s = make_socket();
  if (!s) return s;
  buffer_size(s->fd(), SO_RCVBUFFORCE, SO_RCVBUF, receive_bytes);
  if (auto r = bind_to(s->fd(), o.iface, 0, o); !r) return std::unexpected(r.error());
  if (o.auth) s->authenticate(o.auth);
  return s;
}

sockaddr_in UdpSocket::local_address() const noexcept {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return sa;
}

namespace {

// Sealed form of one message: iovecs head, rest, trailer in `b` slot `i`.
void seal_into(Sealer& sealer, Sealer::Batch& b, unsigned i, std::span<const std::byte> dgram, const sockaddr_in& to) {
  const auto scope = IN_MULTICAST(ntohl(to.sin_addr.s_addr)) ? scope_group : scope_unicast;
  sealer.seal(dgram, scope, std::span<std::byte, 16>(b.heads[i], 16),
              std::span<std::byte, auth_trailer_bytes>(b.trailers[i], auth_trailer_bytes));
  iovec* v = &b.iov[3 * i];
  v[0] = {b.heads[i], std::min<std::size_t>(16, dgram.size())};
  v[1] = {const_cast<std::byte*>(dgram.data()) + v[0].iov_len, dgram.size() - v[0].iov_len};
  v[2] = {b.trailers[i], auth_trailer_bytes};
}

}  // namespace

bool UdpSocket::send_to(std::span<const std::byte> dgram, const sockaddr_in& to) const noexcept {
  if (m_sealer) {
    auto& b = m_sealer->scratch();
    seal_into(*m_sealer, b, 0, dgram, to);
    msghdr m{};
    m.msg_name = const_cast<sockaddr_in*>(&to);
    m.msg_namelen = sizeof to;
    m.msg_iov = b.iov;
    m.msg_iovlen = 3;
    return ::sendmsg(m_fd, &m, MSG_DONTWAIT) >= 0;
  }
  return ::sendto(m_fd, dgram.data(), dgram.size(), MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&to), sizeof to) >=
         0;
}

int UdpSocket::send_batch(mmsghdr* msgs, unsigned n) const noexcept {
  if (m_sealer) {
    // The caller's messages stay as they are (a retry sends them again, sealed afresh).
    n = std::min(n, Sealer::batch);
    auto& b = m_sealer->scratch();
    for (unsigned i = 0; i < n; ++i) {
      const auto& h = msgs[i].msg_hdr;
      const std::span<const std::byte> dgram(static_cast<const std::byte*>(h.msg_iov[0].iov_base), h.msg_iov[0].iov_len);
      seal_into(*m_sealer, b, i, dgram, *static_cast<const sockaddr_in*>(h.msg_name));
      b.msgs[i].msg_hdr = h;
      b.msgs[i].msg_hdr.msg_iov = &b.iov[3 * i];
      b.msgs[i].msg_hdr.msg_iovlen = 3;
    }
    msgs = b.msgs;
  }
  if (n == 1) return ::sendmsg(m_fd, &msgs[0].msg_hdr, MSG_DONTWAIT) < 0 ? 0 : 1;
  const int sent = ::sendmmsg(m_fd, msgs, n, MSG_DONTWAIT);
  return sent < 0 ? 0 : sent;
}

int UdpSocket::recv_batch(mmsghdr* msgs, unsigned n) const noexcept {
  if (n == 1) {
    // One datagram (the latency path): plain recvmsg is the cheaper system call.
    const auto got = ::recvmsg(m_fd, &msgs[0].msg_hdr, MSG_DONTWAIT);
    if (got < 0) return 0;
    msgs[0].msg_len = static_cast<unsigned>(got);
    return 1;
  }
  const int got = ::recvmmsg(m_fd, msgs, n, MSG_DONTWAIT, nullptr);
  return got < 0 ? 0 : got;
}

void wait_readable(std::span<const int> fds, std::chrono::nanoseconds timeout) noexcept {
  pollfd items[8];
  const auto n = std::min<std::size_t>(fds.size(), 8);
  for (std::size_t i = 0; i < n; ++i) items[i] = {fds[i], POLLIN, 0};
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
  ::poll(items, n, static_cast<int>(std::clamp<long long>(ms, 0, 1000)));
}

}  // namespace rill::detail::udp
