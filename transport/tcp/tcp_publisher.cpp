#include "tcp_publisher.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <thread>

#include <zmq.h>

#include "base/logging.hpp"
#include "transport/node_core.hpp"
#include "tcp_options.hpp"
#include "tcp_wire.hpp"

namespace rill::detail::tcp {

namespace {

using clock = std::chrono::steady_clock;

// Control traffic is read every this many publishes, and whenever credit is short.
// (A read that finds nothing costs libzmq two system calls, so not every time.)
constexpr unsigned service_every = 256;
// How long create() retries a bind that finds the port in use.
constexpr auto rebind_wait = std::chrono::milliseconds(1000);

std::string_view as_view(const zmq_msg_t& m) {
  return {static_cast<const char*>(zmq_msg_data(const_cast<zmq_msg_t*>(&m))), zmq_msg_size(const_cast<zmq_msg_t*>(&m))};
}

}  // namespace

Result<std::unique_ptr<PublisherTransport>> TcpPublisher::create(NodeCore& node, const Endpoint& ep,
                                                                 const PublisherConfig& config) {
  try {
    zmq::socket_t sock(node.zmq(), zmq::socket_type::router);
    sock.set(zmq::sockopt::router_mandatory, 1);  // a full or gone peer is an error we count, not a silent drop
    sock.set(zmq::sockopt::sndhwm, pipe_high_water);
    sock.set(zmq::sockopt::rcvhwm, pipe_high_water);
    sock.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(1) << 20);  // control frames are tiny
    sock.set(zmq::sockopt::linger, linger_ms);
    set_keepalive(sock);
    const std::string addr = "tcp://" + ep.host + ":" + std::to_string(ep.port);
    // A publisher on this endpoint that just closed (a restart in the same process) still
    // holds the port until libzmq's I/O thread has closed its listener: retry briefly.
    const auto deadline = std::chrono::steady_clock::now() + rebind_wait;
    while (zmq_bind(sock.handle(), addr.c_str()) != 0) {
      if (zmq_errno() != EADDRINUSE || std::chrono::steady_clock::now() >= deadline) throw zmq::error_t();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    log().info("publisher {:016x} bound {} topic '{}'", config.publisher_id, addr, config.topic);
    return std::unique_ptr<PublisherTransport>(new TcpPublisher(std::move(sock), config));
  } catch (const zmq::error_t& e) {
    const auto code = e.num() == EADDRINUSE ? Errc::address_in_use : Errc::io_error;
    return fail(code, "cannot bind " + ep.uri, e.num());
  }
}

TcpPublisher::TcpPublisher(zmq::socket_t sock, const PublisherConfig& config)
    : m_sock(std::move(sock)), m_config(config), m_history(config.history) {
  if (m_history) m_next_seq = m_history->next_sequence();  // persistent: continues from the log
}

TcpPublisher::~TcpPublisher() = default;

bool TcpPublisher::send_control(const std::string& routing_id, std::span<const std::byte> frame) {
  if (zmq_send(m_sock.handle(), routing_id.data(), routing_id.size(), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
    return false;
  }
  return zmq_send(m_sock.handle(), frame.data(), frame.size(), ZMQ_DONTWAIT) >= 0;
}

void TcpPublisher::handle_control(std::string_view routing_id, std::span<const std::byte> frame) {
  const auto control = decode_control(frame);
  auto peer = std::find_if(m_peers.begin(), m_peers.end(), [&](const Peer& p) { return p.routing_id == routing_id; });
  if (!control) {
    ++m_stats.bad_control;
    if (!m_bad_control_logged) {
      m_bad_control_logged = true;
      log().warn("publisher {:016x}: malformed control frame ({} bytes) from a peer; counting further ones silently",
                 m_config.publisher_id, frame.size());
    }
    return;
  }
  const auto now = clock::now();
  switch (control->type) {
    case ControlType::subscribe: {
      const auto& s = control->subscribe;
      if (peer != m_peers.end() && peer->subscription_id == s.subscription_id) {
        peer->last_seen = now;  // keepalive
        return;
      }
      const auto offered = m_history ? m_history->offered() : DurabilityKind::volatile_;
      std::string_view refused;
      if (check_request(offered, admission_request(s), &refused) != Refusal::none) {
        reject(routing_id, s, offered, refused);
        if (peer != m_peers.end()) peer->dead = true;  // an earlier subscription on this connection
        return;
      }

      if (m_batch_count > 0) {
        // A held batch belongs to the subscriptions it was built for (their credit was
        // checked); send it before this one joins, so it starts at the next message
        // and never receives more than its window.
        flush();
        peer = std::find_if(m_peers.begin(), m_peers.end(), [&](const Peer& p) { return p.routing_id == routing_id; });
      }
      if (peer != m_peers.end() && !peer->group.empty()) {
        member_left(*peer);  // the connection re-subscribed as a new subscription
        --m_group_members;
        peer->group.clear();
      }
      if (peer == m_peers.end()) {
        peer = m_peers.insert(m_peers.end(), Peer{});
        peer->routing_id = std::string(routing_id);
      }
      peer->subscription_id = s.subscription_id;
      peer->policy = static_cast<PolicyKind>(s.policy);
      peer->window = std::min<std::uint32_t>(s.window, pipe_high_water / 2);
      peer->credit = peer->window;
      peer->matches = std::string_view(m_config.topic).starts_with(s.prefix);
      peer->dead = false;
      peer->last_seen = now;
      if (peer->catching_up()) --m_catching_up;
      peer->cursor.reset();
      peer->held.clear();
      peer->held_count = 0;
      peer->durable_name = std::string(s.durable_name);
      peer->acked = 0;
      ++m_stats.joined;
      log().info("publisher {:016x}: subscription {:016x} joined (prefix '{}', {}, {}, matches={})",
                 m_config.publisher_id, s.subscription_id, s.prefix,
                 to_string(Policy{peer->policy, peer->window}),
                 to_string(static_cast<DurabilityKind>(s.durability)), peer->matches);
      if (peer->matches && !s.group.empty()) {
        join_group(*peer, s, offered);
        std::array<std::byte, max_control_bytes> buf;
        const auto n = encode_welcome(
            buf, {m_config.publisher_id, m_next_seq, s.subscription_id, 0, static_cast<std::uint8_t>(offered)});
        if (!send_control(peer->routing_id, std::span(buf).first(n))) peer->dead = true;
      } else if (peer->matches) {
        std::uint64_t lost = 0;
        const auto first = history_start(*peer, s, lost);  // admission's start, and the catch-up
        std::array<std::byte, max_control_bytes> buf;
        const auto n = encode_welcome(
            buf, {m_config.publisher_id, first, s.subscription_id, lost, static_cast<std::uint8_t>(offered)});
        if (!send_control(peer->routing_id, std::span(buf).first(n))) peer->dead = true;
        if (peer->catching_up() && !peer->dead) pump_peer(*peer, 4);
      }
      break;
    }
    case ControlType::ack:
      if (peer != m_peers.end() && peer->subscription_id == control->ack.subscription_id &&
          control->ack.publisher_id == m_config.publisher_id) {
        peer->last_seen = now;
        if (peer->group.empty()) {
          handle_ack(*peer, control->ack);
        } else {
          member_acked(*peer, control->ack.seq);
        }
      }
      break;
    case ControlType::credit:
      if (peer != m_peers.end() && peer->subscription_id == control->credit.subscription_id &&
          control->credit.publisher_id == m_config.publisher_id) {
        peer->credit = std::min<std::int64_t>(peer->credit + control->credit.credits, peer->window);
        peer->last_seen = now;
      }
      break;
    case ControlType::unsubscribe:
      if (peer != m_peers.end() && peer->subscription_id == control->subscribe.subscription_id) peer->dead = true;
      break;
    default:
      ++m_stats.bad_control;  // publisher-bound frames only; a welcome sent to us is garbage
      break;
  }
}

void TcpPublisher::drain_control() {
  zmq_msg_t rid;
  zmq_msg_t body;
  zmq_msg_init(&rid);
  zmq_msg_init(&body);
  while (zmq_msg_recv(&rid, m_sock.handle(), ZMQ_DONTWAIT) >= 0) {
    // A ROUTER always yields the routing id first; the control frame follows.
    if (!zmq_msg_more(&rid) || zmq_msg_recv(&body, m_sock.handle(), ZMQ_DONTWAIT) < 0) {
      ++m_stats.bad_control;
      continue;
    }
    if (zmq_msg_more(&body)) {  // multi-part garbage: swallow the rest
      ++m_stats.bad_control;
      while (zmq_msg_more(&body) && zmq_msg_recv(&body, m_sock.handle(), ZMQ_DONTWAIT) >= 0) {
      }
      continue;
    }
    handle_control(as_view(rid), {static_cast<const std::byte*>(zmq_msg_data(&body)), zmq_msg_size(&body)});
  }
  zmq_msg_close(&rid);
  zmq_msg_close(&body);
  expire_peers(clock::now());
  remove_dead_peers();
}

void TcpPublisher::expire_peers(clock::time_point now) {
  for (auto& p : m_peers) {
    if (now - p.last_seen > std::chrono::milliseconds(peer_timeout_ms)) p.dead = true;
  }
}

void TcpPublisher::remove_dead_peers() {
  const auto before = m_peers.size();
  for (auto& p : m_peers) {
    if (p.dead && !p.group.empty()) {
      member_left(p);  // its unacknowledged messages go to another member
      --m_group_members;
      p.group.clear();
    }
  }
  std::erase_if(m_peers, [&](const Peer& p) {
    if (p.dead) {
      log().info("publisher {:016x}: subscription {:016x} left", m_config.publisher_id, p.subscription_id);
      if (p.catching_up()) --m_catching_up;
    }
    return p.dead;
  });
  m_stats.left += before - m_peers.size();
  m_stats.subscribers = m_peers.size();
  m_has_backpressure = std::any_of(m_peers.begin(), m_peers.end(),
                                   [](const Peer& p) { return p.matches && p.policy == PolicyKind::backpressure; });
}

const TcpPublisher::Peer* TcpPublisher::blocking_peer(std::int64_t needed) const noexcept {
  for (const auto& p : m_peers) {
    // A peer catching up is sent history at its own pace, nothing live: it holds nobody.
    if (p.matches && p.policy == PolicyKind::backpressure && p.credit < needed && !p.dead && !p.catching_up() &&
        p.group.empty()) {
      return &p;
    }
  }
  return m_group_members > 0 ? blocking_group(needed) : nullptr;
}

Result<void> TcpPublisher::wait_for_credit(std::int64_t needed, clock::time_point deadline) {
  const auto start = clock::now();
  auto next_probe = start;
  const Peer* blocker = blocking_peer(needed);
  while (blocker != nullptr) {
    m_stats.last_blocker = blocker->subscription_id;
    auto now = clock::now();
    if (now >= deadline) {
      ++m_stats.timeouts;
      m_stats.blocked_ns += static_cast<std::uint64_t>((now - start).count());
      return fail(Errc::timed_out, "backpressure: a subscriber's window stayed full until the deadline");
    }
    if (now >= next_probe) {
      // A probe to a peer that is gone fails at once (router_mandatory): that releases us.
      std::array<std::byte, 16> buf;
      const auto n = encode_ping(buf);
      for (auto& p : m_peers) {
        if (p.policy == PolicyKind::backpressure && p.credit < needed && !send_control(p.routing_id, std::span(buf).first(n)) &&
            zmq_errno() == EHOSTUNREACH) {
          p.dead = true;
        }
      }
      next_probe = now + std::chrono::milliseconds(50);
    }
    zmq_pollitem_t item{m_sock.handle(), 0, ZMQ_POLLIN, 0};
    const auto wait = std::min(deadline, next_probe) - now;
    zmq_poll(&item, 1, std::max<long>(1, std::chrono::duration_cast<std::chrono::milliseconds>(wait).count()));
    drain_control();
    blocker = blocking_peer(needed);
  }
  m_stats.blocked_ns += static_cast<std::uint64_t>((clock::now() - start).count());
  return {};
}

Result<void> TcpPublisher::reserve(std::chrono::nanoseconds timeout) {
  if (m_closed) return fail(Errc::closed, "publisher closed");
  if (m_service_countdown-- == 0) {
    m_service_countdown = service_every;
    drain_control();
  }
  // Late joiners and durable subscriptions first: one that reaches the live sequence now
  // is sent the next message live (and counts for its window, below); the others read it
  // from the history later.
  if (m_catching_up > 0) pump_history(true);
  if (m_group_members > 0) pump_groups();
  // A held-back batch already owns a window slot per envelope at every backpressure
  // peer; the new message needs one more. If that is missing, send the batch first
  // (its slots exist), then wait for room for this one.
  if (m_has_backpressure && blocking_peer(m_batch_count + 1) != nullptr) {
    flush();
    drain_control();
    if (blocking_peer(1) != nullptr) return wait_for_credit(1, clock::now() + timeout);
  }
  return {};
}

Result<void> TcpPublisher::send(std::span<const std::byte> envelope, std::uint64_t seq, std::chrono::nanoseconds timeout) {
  // A durable publisher reserved already (before keeping the message); doing it again
  // finds the room it made.
  if (auto room = reserve(timeout); !room) return room;
  if (m_config.batch_messages <= 1) {
    send_frame(envelope, 1, seq);
  } else {
    append_to_batch(envelope, seq);
  }
  ++m_stats.sent;
  m_next_seq = seq + 1;
  return {};
}

void TcpPublisher::append_to_batch(std::span<const std::byte> envelope, std::uint64_t seq) {
  const auto padded = (envelope.size() + 7) & ~std::size_t{7};
  if (m_batch_count > 0 && m_batch.size() + batch_entry_header_bytes + padded > m_config.batch_bytes) flush();
  if (m_batch_count == 0) {
    m_batch_first = seq;
    m_batch.resize(batch_header_bytes);
    std::memcpy(m_batch.data(), batch_magic, 4);
  }
  const auto at = m_batch.size();
  m_batch.resize(at + batch_entry_header_bytes + padded);  // zero-fills the padding
  const auto len = static_cast<std::uint32_t>(envelope.size());
  std::memcpy(m_batch.data() + at, &len, 4);
  std::memset(m_batch.data() + at + 4, 0, 4);
  std::memcpy(m_batch.data() + at + batch_entry_header_bytes, envelope.data(), envelope.size());
  if (++m_batch_count >= m_config.batch_messages || m_batch.size() >= m_config.batch_bytes) flush();
}

void TcpPublisher::flush() {
  if (m_batch_count == 0) return;
  std::memcpy(m_batch.data() + 4, &m_batch_count, 4);
  send_frame(m_batch, m_batch_count, m_batch_first);
  m_batch_count = 0;
  m_batch.clear();  // keeps its capacity: no allocation in steady state
}

void TcpPublisher::send_frame(std::span<const std::byte> frame, std::uint32_t envelopes, std::uint64_t first_seq) {
  zmq_msg_t msg;
  if (zmq_msg_init_size(&msg, frame.size()) != 0) return;  // out of memory: every peer sees the gap
  std::memcpy(zmq_msg_data(&msg), frame.data(), frame.size());
  bool any_dead = false;
  for (auto& p : m_peers) {
    if (!p.matches || p.dead || p.catching_up() || !p.group.empty()) continue;
    if (zmq_send(m_sock.handle(), p.routing_id.data(), p.routing_id.size(), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
      if (zmq_errno() == EAGAIN) {
        m_stats.peer_drops += envelopes;  // its pipe is full: the subscriber sees a gap, we never block
      } else {
        p.dead = any_dead = true;
      }
      continue;
    }
    // Fan-out shares one reference-counted buffer: zmq_msg_copy does not copy bytes.
    zmq_msg_t share;
    zmq_msg_init(&share);
    zmq_msg_copy(&share, &msg);
    if (zmq_msg_send(&share, m_sock.handle(), ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&share);
      p.dead = any_dead = true;
      continue;
    }
    if (p.policy == PolicyKind::backpressure) p.credit -= envelopes;
  }
  zmq_msg_close(&msg);
  if (m_group_members > 0) send_to_groups(frame, envelopes, first_seq);
  if (any_dead) remove_dead_peers();
}

std::size_t TcpPublisher::service() {
  flush();
  drain_control();
  if (m_catching_up > 0) pump_history(false);
  if (m_group_members > 0) pump_groups();
  return m_peers.size();
}

Result<std::size_t> TcpPublisher::wait_for_subscribers(std::size_t n, clock::time_point deadline) {
  for (;;) {
    drain_control();
    const auto attached = static_cast<std::size_t>(
        std::count_if(m_peers.begin(), m_peers.end(), [](const Peer& p) { return p.matches; }));
    if (attached >= n) return attached;
    const auto now = clock::now();
    if (now >= deadline) {
      return fail(Errc::timed_out, std::to_string(attached) + " of " + std::to_string(n) + " subscribers attached");
    }
    zmq_pollitem_t item{m_sock.handle(), 0, ZMQ_POLLIN, 0};
    zmq_poll(&item, 1, std::clamp<long>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count(), 1, 20));
  }
}

void TcpPublisher::close(std::uint64_t last_seq) {
  if (m_closed) return;
  flush();
  m_closed = true;
  drain_control();
  // Subscriptions still catching up get the rest of the history first (up to the linger time).
  const auto history_deadline = clock::now() + std::chrono::milliseconds(linger_ms);
  while (m_catching_up > 0 && clock::now() < history_deadline) {
    pump_history(false);
    if (m_catching_up == 0) break;
    zmq_pollitem_t item{m_sock.handle(), 0, ZMQ_POLLIN, 0};
    zmq_poll(&item, 1, 1);
    drain_control();
  }
  std::array<std::byte, 32> buf;
  const auto n = encode_bye(buf, {m_config.publisher_id, last_seq});
  // The BYE tells a subscriber how long the tail was; behind a full pipe it waits for
  // room (the subscriber is draining) up to the linger time, then gives up.
  std::vector<const Peer*> pending;
  for (const auto& p : m_peers) {
    if (p.matches && !p.dead) pending.push_back(&p);
  }
  const auto deadline = clock::now() + std::chrono::milliseconds(linger_ms);
  std::vector<std::uint64_t> answering;  // subscriptions sent BYE: they answer it with UNSUBSCRIBE
  while (!pending.empty()) {
    std::erase_if(pending, [&](const Peer* p) {
      if (send_control(p->routing_id, std::span(buf).first(n))) {
        answering.push_back(p->subscription_id);
        return true;
      }
      return zmq_errno() != EAGAIN;
    });
    if (pending.empty() || clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // A subscriber that answers BYE has received everything sent before it. Until then the
  // socket stays open and polled: closing it right after a burst could lose the tail that
  // was still on its way (and the BYE with it) on a loaded host. A peer that never answers
  // (an older or foreign subscriber, a dead one) costs at most the rest of the linger time.
  while (!answering.empty() && clock::now() < deadline) {
    zmq_pollitem_t item{m_sock.handle(), 0, ZMQ_POLLIN, 0};
    zmq_poll(&item, 1, 1);
    drain_control();
    std::erase_if(answering, [&](std::uint64_t id) {
      return std::none_of(m_peers.begin(), m_peers.end(),
                          [&](const Peer& p) { return p.subscription_id == id && !p.dead; });
    });
  }
}

}  // namespace rill::detail::tcp
