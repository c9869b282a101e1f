// Raw ZeroMQ baselines: the same work as rill's tcp runs, written the way a cppzmq user
// would (PUB/SUB, XPUB for the lossless flood, one message per send), with nothing of
// rill in between. Whatever
// rill adds on top of ZeroMQ shows up as the ratio against these numbers.
//
// Byte 0 of every message is a tag, so setup traffic (hellos, probes) that is still in
// flight when timing starts can never be mistaken for a measured message.
#include "perf_detail.hpp"
#include "perf_kit.hpp"

#include <sched.h>

#include <cstdio>
#include <spdlog/fmt/fmt.h>
#include <thread>
#include <zmq.hpp>

namespace rill::perf {
namespace {

using detail::Clock;
using namespace std::chrono_literals;

constexpr char tag_hello = 'H';  // ping-pong path check, echoed
constexpr char tag_ping = 'P';   // ping-pong measured round trip, echoed
constexpr char tag_quit = 'Q';   // ping-pong: echo side may exit
constexpr char tag_probe = 'p';  // throughput: sender is there, receiver may say ready
constexpr char tag_data = 'D';   // throughput: counted message
constexpr char tag_end = 'E';    // throughput: nothing more follows

// Port layout inside base_port .. base_port + 9.
constexpr std::uint16_t port_ping = 0;   // ping side's PUB
constexpr std::uint16_t port_echo = 1;   // echo side's PUB
constexpr std::uint16_t port_flood = 2;  // throughput sender's PUB

std::string endpoint(const PerfOptions& o, std::uint16_t offset) {
  return fmt::format("tcp://127.0.0.1:{}", o.base_port + offset);
}

std::size_t wire_size(const PerfOptions& o) { return std::max<std::size_t>(o.size, 1); }

char tag_of(const zmq::message_t& m) { return m.size() > 0 ? *m.data<char>() : '\0'; }

// Receives one message using the configured idle strategy; false after `timeout` of
// silence. Block mode relies on the socket's RCVTIMEO being `timeout`.
//
// Spin yields between polls: ZeroMQ's I/O thread inherits the side's pinning and so
// shares the spinner's core; a spinner that never yields makes it wait for the end of
// a scheduler slice (measured here: p99 2.8 ms instead of 90 us). sched_yield keeps the
// thread runnable (no sleep, no wake-up), and costs about one syscall per poll, as the
// non-blocking recv itself does.
bool recv_wait(zmq::socket_t& sock, zmq::message_t& msg, Idle idle, std::chrono::milliseconds timeout) {
  if (idle == Idle::block) return sock.recv(msg).has_value();
  const auto deadline = Clock::now() + timeout;
  for (unsigned spins = 1;; ++spins) {
    if (sock.recv(msg, zmq::recv_flags::dontwait)) return true;
    sched_yield();
    // Reading the clock every pass would add to the very latency being measured.
    if ((spins & 63U) == 0 && Clock::now() >= deadline) return false;
  }
}

// A PUB/SUB pair for one side of the ping-pong: publish on `own`, subscribe to `peer`.
struct Pair {
  zmq::context_t ctx{1};
  zmq::socket_t pub{ctx, zmq::socket_type::pub};
  zmq::socket_t sub{ctx, zmq::socket_type::sub};

  Pair(const PerfOptions& o, std::uint16_t own, std::uint16_t peer) {
    // Bounded linger: the last message (quit) still goes out, a dead peer cannot hold us.
    pub.set(zmq::sockopt::linger, o.step_timeout_ms);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::rcvtimeo, o.step_timeout_ms);
    sub.set(zmq::sockopt::subscribe, "");
    pub.bind(endpoint(o, own));
    sub.connect(endpoint(o, peer));
  }
};

// Slow joiner: a PUB drops messages until the peer's subscription has arrived, in both
// directions. Repeat a hello until one comes back; that proves both paths are live.
std::expected<void, std::string> await_path(Pair& p, const PerfOptions& o, const Link& link) {
  std::string hello(wire_size(o), '\0');
  hello[0] = tag_hello;
  zmq::message_t reply;
  zmq_pollitem_t item{.socket = p.sub.handle(), .fd = 0, .events = ZMQ_POLLIN, .revents = 0};
  const auto deadline = Clock::now() + detail::step_timeout(o);
  while (Clock::now() < deadline) {
    if (const Peer peer = link.peer(); peer == Peer::gone || peer == Peer::done)
      return std::unexpected(std::string("echo side exited before answering hello"));
    p.pub.send(zmq::buffer(hello), zmq::send_flags::none);
    if (zmq::poll(&item, 1, 10ms) <= 0) continue;
    while (p.sub.recv(reply, zmq::recv_flags::dontwait))
      if (tag_of(reply) == tag_hello) return {};
  }
  return std::unexpected(fmt::format("no echo of hello within {} ms", o.step_timeout_ms));
}

std::expected<std::vector<std::uint64_t>, std::string> raw_ping(const PerfOptions& o, const Link& link) {
  try {
    Pair p(o, port_ping, port_echo);
    if (auto ok = await_path(p, o, link); !ok) return std::unexpected(ok.error());

    std::string payload(wire_size(o), 'x');
    payload[0] = tag_ping;
    zmq::message_t reply;
    std::vector<std::uint64_t> samples;
    samples.reserve(o.count);
    const std::size_t total = o.warmup + o.count;
    for (std::size_t i = 0; i < total; ++i) {
      const auto t0 = Clock::now();
      p.pub.send(zmq::buffer(payload), zmq::send_flags::none);
      do {
        if (!recv_wait(p.sub, reply, o.idle, detail::step_timeout(o)))
          return std::unexpected(fmt::format("no reply to round trip {} within {} ms", i, o.step_timeout_ms));
      } while (tag_of(reply) != tag_ping);  // a late hello echo: skip it
      const auto t1 = Clock::now();
      if (i >= o.warmup)
        samples.push_back(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
    }
    payload[0] = tag_quit;
    p.pub.send(zmq::buffer(payload), zmq::send_flags::none);
    return samples;
  } catch (const zmq::error_t& e) {
    return std::unexpected(fmt::format("zmq: {}", e.what()));
  }
}

int raw_echo(const PerfOptions& o, const Link&) {
  try {
    Pair p(o, port_echo, port_ping);
    zmq::message_t msg;
    for (;;) {
      if (!recv_wait(p.sub, msg, o.idle, detail::step_timeout(o))) {
        fmt::print(stderr, "raw-zmq echo: nothing received for {} ms, giving up\n", o.step_timeout_ms);
        return 2;
      }
      if (tag_of(msg) == tag_quit) return 0;
      p.pub.send(msg, zmq::send_flags::none);  // hands the received buffer back: no copy
    }
  } catch (const zmq::error_t& e) {
    fmt::print(stderr, "raw-zmq echo: zmq: {}\n", e.what());
    return 3;
  }
}

// Waits while the receiver is in the given state; false if the deadline passed first.
bool wait_while(const Link& link, Peer state, Clock::time_point deadline) {
  while (link.peer() == state) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Queue depth per side for the throughput run: deep enough never to starve the
// receiver, bounded (about 32 MiB of payload) so a fast sender cannot queue gigabytes.
int flood_hwm(const PerfOptions& o) {
  return static_cast<int>(std::clamp<std::size_t>((32U << 20) / (wire_size(o) + 128), 100, 1000000));
}

std::expected<void, std::string> raw_send(const PerfOptions& o, const Link& link) {
  try {
    zmq::context_t ctx{1};
    // XPUB is PUB on the wire; XPUB_NODROP makes a full queue block the sender instead
    // of dropping, so the baseline loses nothing and its memory stays bounded.
    zmq::socket_t pub{ctx, zmq::socket_type::xpub};
    pub.set(zmq::sockopt::xpub_nodrop, true);
    pub.set(zmq::sockopt::sndhwm, flood_hwm(o));
    pub.set(zmq::sockopt::sndtimeo, o.step_timeout_ms);  // a receiver that stops reading must not hang us
    pub.set(zmq::sockopt::linger, 0);                    // we only close once the receiver has reported
    pub.bind(endpoint(o, port_flood));
    const auto send_one = [&](const std::string& m) {
      return pub.send(zmq::buffer(m), zmq::send_flags::none).has_value();
    };
    const auto stalled = [&] {
      return std::unexpected(fmt::format("receiver stopped taking messages for {} ms", o.step_timeout_ms));
    };

    // Probe until the receiver has seen one: then its subscription is live and the
    // first timed message cannot be dropped by the PUB.
    std::string buf(wire_size(o), 'x');
    buf[0] = tag_probe;
    const auto ready_deadline = Clock::now() + detail::step_timeout(o);
    for (Peer p = link.peer(); p != Peer::ready; p = link.peer()) {
      if (p == Peer::done || p == Peer::gone) return std::unexpected(std::string("receiver stopped before it was ready"));
      if (Clock::now() >= ready_deadline)
        return std::unexpected(fmt::format("receiver not ready within {} ms", o.step_timeout_ms));
      if (!send_one(buf)) return stalled();
      std::this_thread::sleep_for(1ms);
    }

    buf[0] = tag_data;
    if (o.rate > 0) {
      const auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / o.rate));
      auto next = Clock::now();
      for (std::size_t i = 0; i < o.throughput_count; ++i) {
        while (Clock::now() < next) {
        }
        next += interval;
        if (!send_one(buf)) return stalled();
      }
    } else {
      for (std::size_t i = 0; i < o.throughput_count; ++i)
        if (!send_one(buf)) return stalled();
    }
    buf[0] = tag_end;
    if (!send_one(buf)) return stalled();

    // Closing the PUB now would discard what is still queued for a slower receiver.
    if (!wait_while(link, Peer::ready, Clock::now() + detail::drain_budget(o)))
      return std::unexpected(std::string("receiver did not finish in time"));
    return {};
  } catch (const zmq::error_t& e) {
    return std::unexpected(fmt::format("zmq: {}", e.what()));
  }
}

std::expected<std::pair<double, std::uint64_t>, std::string> raw_receive(const PerfOptions& o, const Link& link) {
  try {
    zmq::context_t ctx{1};
    zmq::socket_t sub{ctx, zmq::socket_type::sub};
    sub.set(zmq::sockopt::rcvhwm, flood_hwm(o));  // full: TCP pushes back to the sender, nothing is dropped
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::rcvtimeo, o.step_timeout_ms);
    sub.set(zmq::sockopt::subscribe, "");
    sub.connect(endpoint(o, port_flood));

    zmq::message_t msg;
    if (!sub.recv(msg)) return std::unexpected(fmt::format("no probe from the sender within {} ms", o.step_timeout_ms));
    link.ready();

    const std::uint64_t total = o.throughput_count;
    std::uint64_t received = 0;
    Clock::time_point first{};
    Clock::time_point last{};
    for (;;) {
      // The clock is read only when the queue runs dry, never per message.
      if (!sub.recv(msg, zmq::recv_flags::dontwait)) {
        const auto dry_since = Clock::now();
        if (!recv_wait(sub, msg, o.idle, detail::step_timeout(o))) {
          last = dry_since;  // sender went quiet: whatever is missing is lost
          break;
        }
      }
      const char tag = tag_of(msg);
      if (tag == tag_data) {
        if (received++ == 0) first = Clock::now();
        if (received == total) {
          last = Clock::now();
          break;
        }
      } else if (tag == tag_end) {
        last = Clock::now();
        break;
      }
    }
    if (received == 0) return std::unexpected(std::string("no data message arrived"));
    const double secs = std::chrono::duration<double>(last - first).count();
    const double rate = received > 1 && secs > 0 ? static_cast<double>(received - 1) / secs : 0.0;
    return std::pair{rate, total - received};
  } catch (const zmq::error_t& e) {
    return std::unexpected(fmt::format("zmq: {}", e.what()));
  }
}

}  // namespace

PingPongRunner raw_zmq_pingpong() { return {.name = "raw-zmq", .echo = raw_echo, .ping = raw_ping}; }

ThroughputRunner raw_zmq_throughput() { return {.name = "raw-zmq", .send = raw_send, .receive = raw_receive}; }

}  // namespace rill::perf
