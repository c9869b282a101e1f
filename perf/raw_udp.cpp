// Raw UDP baselines: the same work as rill's udp runs over the same path (IPv4
// multicast on 127.0.0.1, a group per direction), written the way a socket user would:
// one datagram per message, recvmmsg/sendmmsg for the stream, nothing of rill between.
//
// Byte 0 of every datagram is a tag, as in raw_zmq.cpp.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <spdlog/fmt/fmt.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "perf_detail.hpp"
#include "perf_kit.hpp"

namespace rill::perf {
namespace {

using detail::Clock;
using namespace std::chrono_literals;

constexpr char tag_hello = 'H', tag_ping = 'P', tag_quit = 'Q', tag_probe = 'p', tag_data = 'D', tag_end = 'E';
// Groups and ports inside base_port + 10 .. base_port + 19 (raw_zmq uses + 0 .. + 9).
constexpr std::uint16_t port_ping = 10, port_echo = 11, port_flood = 12;

std::size_t wire_size(const PerfOptions& o) {
  return std::max<std::size_t>(o.size, 1);
}

sockaddr_in group_of(const PerfOptions& o, std::uint16_t offset) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(o.base_port + offset));
  inet_pton(AF_INET, fmt::format("239.255.78.{}", offset).c_str(), &sa.sin_addr);
  return sa;
}

// An fd that closes itself.
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
  Fd& operator=(Fd&&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::expected<Fd, std::string> sender() {
  Fd s(::socket(AF_INET, SOCK_DGRAM, 0));
  if (s.fd < 0) return std::unexpected(fmt::format("socket: {}", std::strerror(errno)));
  in_addr lo{};
  inet_pton(AF_INET, "127.0.0.1", &lo);
  const unsigned char one = 1;
  const int sndbuf = 4 << 20;
  setsockopt(s.fd, IPPROTO_IP, IP_MULTICAST_IF, &lo, sizeof lo);
  setsockopt(s.fd, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof one);
  setsockopt(s.fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
  return s;
}

std::expected<Fd, std::string> receiver(const sockaddr_in& group, const PerfOptions& o) {
  Fd s(::socket(AF_INET, SOCK_DGRAM, 0));
  if (s.fd < 0) return std::unexpected(fmt::format("socket: {}", std::strerror(errno)));
  const int one = 1;
  const int rcvbuf = 8 << 20;
  setsockopt(s.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(s.fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
  timeval tv{.tv_sec = o.step_timeout_ms / 1000, .tv_usec = (o.step_timeout_ms % 1000) * 1000};
  setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::bind(s.fd, reinterpret_cast<const sockaddr*>(&group), sizeof group) != 0) {
    return std::unexpected(fmt::format("bind: {}", std::strerror(errno)));
  }
  ip_mreq mreq{};
  mreq.imr_multiaddr = group.sin_addr;
  inet_pton(AF_INET, "127.0.0.1", &mreq.imr_interface);
  if (setsockopt(s.fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0) {
    return std::unexpected(fmt::format("join: {}", std::strerror(errno)));
  }
  return s;
}

// One datagram with the configured idle strategy (spin: non-blocking reads with a
// yield between, as the rill side does; block: a blocking read with a timeout).
ssize_t recv_wait(int fd, char* buf, std::size_t len, Idle idle, std::chrono::milliseconds timeout) {
  if (idle == Idle::block) return ::recv(fd, buf, len, 0);
  const auto deadline = Clock::now() + timeout;
  for (unsigned spins = 1;; ++spins) {
    const auto n = ::recv(fd, buf, len, MSG_DONTWAIT);
    if (n >= 0) return n;
    sched_yield();
    if ((spins & 63U) == 0 && Clock::now() >= deadline) return -1;
  }
}

void send_to(int fd, const std::string& m, const sockaddr_in& to) {
  ::sendto(fd, m.data(), m.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
}

std::expected<std::vector<std::uint64_t>, std::string> raw_ping(const PerfOptions& o, const Link& link) {
  auto out = sender();
  auto in = receiver(group_of(o, port_echo), o);
  if (!out) return std::unexpected(out.error());
  if (!in) return std::unexpected(in.error());
  const auto to = group_of(o, port_ping);
  std::string payload(wire_size(o), 'x');
  std::vector<char> buf(65536);
  // The echo side joins asynchronously: hello until one comes back.
  payload[0] = tag_hello;
  const auto deadline = Clock::now() + detail::step_timeout(o);
  for (bool back = false; !back;) {
    if (Clock::now() > deadline || link.peer() == Peer::gone) return std::unexpected(std::string("no echo of hello"));
    send_to(out->fd, payload, to);
    pollfd p{in->fd, POLLIN, 0};
    if (::poll(&p, 1, 10) <= 0) continue;
    while (::recv(in->fd, buf.data(), buf.size(), MSG_DONTWAIT) > 0) back = back || buf[0] == tag_hello;
  }
  payload[0] = tag_ping;
  std::vector<std::uint64_t> samples;
  samples.reserve(o.count);
  for (std::size_t i = 0; i < o.warmup + o.count; ++i) {
    const auto t0 = Clock::now();
    send_to(out->fd, payload, to);
    for (;;) {
      const auto n = recv_wait(in->fd, buf.data(), buf.size(), o.idle, detail::step_timeout(o));
      if (n < 0) return std::unexpected(fmt::format("no reply to round trip {} (a datagram was lost)", i));
      if (n > 0 && buf[0] == tag_ping) break;
    }
    if (i >= o.warmup) samples.push_back(static_cast<std::uint64_t>((Clock::now() - t0).count()));
  }
  payload[0] = tag_quit;
  for (int i = 0; i < 3; ++i) send_to(out->fd, payload, to);
  return samples;
}

int raw_echo(const PerfOptions& o, const Link& link) {
  auto out = sender();
  auto in = receiver(group_of(o, port_ping), o);
  if (!out || !in) return 3;
  link.ready();
  const auto to = group_of(o, port_echo);
  std::vector<char> buf(65536);
  for (;;) {
    const auto n = recv_wait(in->fd, buf.data(), buf.size(), o.idle, detail::step_timeout(o) * 4);
    if (n < 0) return 2;
    if (n > 0 && buf[0] == tag_quit) return 0;
    ::sendto(out->fd, buf.data(), static_cast<std::size_t>(n), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  }
}

std::expected<void, std::string> raw_send(const PerfOptions& o, const Link& link) {
  auto out = sender();
  if (!out) return std::unexpected(out.error());
  const auto to = group_of(o, port_flood);
  std::string buf(wire_size(o), 'x');
  buf[0] = tag_probe;
  const auto deadline = Clock::now() + detail::step_timeout(o);
  while (link.peer() != Peer::ready) {
    if (link.peer() == Peer::gone || Clock::now() > deadline)
      return std::unexpected(std::string("receiver never ready"));
    send_to(out->fd, buf, to);
    std::this_thread::sleep_for(1ms);
  }
  // 64 datagrams per sendmmsg: the batching a raw socket user would do.
  buf[0] = tag_data;
  constexpr unsigned batch = 64;
  iovec iov{buf.data(), buf.size()};
  std::vector<mmsghdr> msgs(batch);
  for (auto& m : msgs) {
    m.msg_hdr = {};
    m.msg_hdr.msg_name = const_cast<sockaddr_in*>(&to);
    m.msg_hdr.msg_namelen = sizeof to;
    m.msg_hdr.msg_iov = &iov;
    m.msg_hdr.msg_iovlen = 1;
  }
  for (std::size_t sent = 0; sent < o.throughput_count;) {
    const auto n = static_cast<unsigned>(std::min<std::size_t>(batch, o.throughput_count - sent));
    const int k = ::sendmmsg(out->fd, msgs.data(), n, 0);
    if (k < 0) return std::unexpected(fmt::format("sendmmsg: {}", std::strerror(errno)));
    sent += static_cast<std::size_t>(k);
  }
  buf[0] = tag_end;
  for (int i = 0; i < 3; ++i) send_to(out->fd, buf, to);
  while (link.peer() == Peer::ready) std::this_thread::sleep_for(1ms);
  return {};
}

std::expected<std::pair<double, std::uint64_t>, std::string> raw_receive(const PerfOptions& o, const Link& link) {
  auto in = receiver(group_of(o, port_flood), o);
  if (!in) return std::unexpected(in.error());
  constexpr unsigned batch = 64;
  std::vector<char> bufs(batch * 2048);
  std::vector<iovec> iov(batch);
  std::vector<mmsghdr> msgs(batch);
  for (unsigned i = 0; i < batch; ++i) {
    iov[i] = {bufs.data() + i * 2048, 2048};
    msgs[i].msg_hdr = {};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  std::vector<char> one(65536);
  if (::recv(in->fd, one.data(), one.size(), 0) < 0) return std::unexpected(std::string("no probe from the sender"));
  link.ready();
  std::uint64_t received = 0;
  Clock::time_point first{}, last{};
  bool done = false;
  while (!done) {
    int k = ::recvmmsg(in->fd, msgs.data(), batch, MSG_DONTWAIT, nullptr);
    if (k <= 0) {
      const auto dry_since = Clock::now();
      pollfd p{in->fd, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) {  // quiet: the rest was lost
        last = dry_since;
        break;
      }
      continue;
    }
    for (int i = 0; i < k; ++i) {
      const char tag = bufs[static_cast<std::size_t>(i) * 2048];
      if (tag == tag_data) {
        if (received++ == 0) first = Clock::now();
        last = Clock::now();
      } else if (tag == tag_end) {
        done = true;
      }
    }
  }
  if (received < 2) return std::unexpected(std::string("no data arrived"));
  const double secs = std::chrono::duration<double>(last - first).count();
  return std::pair{static_cast<double>(received - 1) / secs, o.throughput_count - received};
}

}  // namespace

PingPongRunner raw_udp_pingpong() {
  return {.name = "raw-udp", .echo = raw_echo, .ping = raw_ping};
}

ThroughputRunner raw_udp_throughput() {
  return {.name = "raw-udp", .send = raw_send, .receive = raw_receive};
}

}  // namespace rill::perf
