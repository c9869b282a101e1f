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
// The lock is let go this often while a publisher waits (credit, answers to its BYE),
// so the endpoint's other publishers go on.
constexpr auto lock_slice = std::chrono::milliseconds(1);

}  // namespace

Result<std::unique_ptr<PublisherTransport>> TcpPublisher::create(NodeCore& node, const Endpoint& ep,
                                                                 const PublisherConfig& config) {
  auto shared = TcpEndpoint::open(node, ep);
  if (!shared) return std::unexpected(shared.error());
  std::unique_ptr<TcpPublisher> pub(new TcpPublisher(std::move(*shared), config));
  std::lock_guard lock(pub->m_ep->mutex);
  // Read what has arrived before we are attached (nothing is posted to us twice), then
  // greet every subscription already connected, before anything is published: they take
  // us from our first message.
  pub->m_ep->drain();
  pub->m_ep->attach(*pub);
  for (const auto& sub : pub->m_ep->live()) {
    if (std::string_view(config.topic).starts_with(sub->prefix)) pub->join(sub);
  }
  pub->remove_dead_peers();
  log().info("publisher {:016x} on {} topic '{}' ({} subscriptions there match)", config.publisher_id,
             pub->m_ep->address(), config.topic, pub->m_peers.size());
  return std::unique_ptr<PublisherTransport>(std::move(pub));
}

TcpPublisher::TcpPublisher(std::shared_ptr<TcpEndpoint> ep, const PublisherConfig& config)
    : m_ep(std::move(ep)), m_sock(m_ep->socket()), m_config(config), m_history(config.history) {
  if (m_history) m_next_seq = m_history->next_sequence();  // persistent: continues from the log
}

TcpPublisher::~TcpPublisher() {
  std::lock_guard lock(m_ep->mutex);
  m_ep->detach(*this);
}

const PublisherStats& TcpPublisher::stats() const {
  std::lock_guard lock(m_ep->mutex);
  m_stats_copy = m_stats;
  m_stats_copy.bad_control += m_ep->bad_control();
  m_stats_copy.auth_rejected = m_ep->auth_rejected();
  return m_stats_copy;
}

bool TcpPublisher::send_control(const std::string& routing_id, std::span<const std::byte> frame) {
  return m_ep->send_control(routing_id, frame);
}

void TcpPublisher::join(const std::shared_ptr<TcpSubscription>& sub) {
  const auto s = sub->request();
  const auto offered = m_history ? m_history->offered() : DurabilityKind::volatile_;
  std::string_view refused;
  auto peer = std::find_if(m_peers.begin(), m_peers.end(), [&](const Peer& p) { return p.sub == sub; });
  if (peer != m_peers.end()) return;  // greeted already (at attach, then again from the inbox)
  if (check_request(offered, admission_request(s), &refused) != Refusal::none) {
    reject(sub->routing_id, s, offered, refused);
    return;
  }
  if (m_batch_count > 0) {
    // A held batch belongs to the subscriptions it was built for (their credit was
    // checked); send it before this one joins, so it starts at the next message
    // and never receives more than its window.
    flush_locked();
  }
  for (auto& p : m_peers) {
    if (p.sub->routing_id == sub->routing_id) p.dead = true;  // an earlier subscription on this connection
  }
  remove_dead_peers();
  auto& added = m_peers.emplace_back();
  added.sub = sub;
  added.durable_name = sub->durable_name;
  ++m_stats.joined;
  log().info("publisher {:016x}: subscription {:016x} joined (prefix '{}', {}, {})", m_config.publisher_id,
             s.subscription_id, s.prefix, to_string(Policy{sub->policy, sub->window}),
             to_string(static_cast<DurabilityKind>(s.durability)));
  std::uint64_t first = m_next_seq;
  std::uint64_t lost = 0;
  if (!s.group.empty()) {
    join_group(added, s, offered);
  } else {
    first = history_start(added, s, lost);  // admission's start, and the catch-up
  }
  std::array<std::byte, max_control_bytes> buf;
  const auto n = encode_welcome(buf, {.publisher_id = m_config.publisher_id,
                                      .next_seq = first,
                                      .subscription_id = s.subscription_id,
                                      .lost = lost,
                                      .offered = static_cast<std::uint8_t>(offered),
                                      .instance = m_ep->instance()});
  if (!send_control(sub->routing_id, std::span(buf).first(n))) added.dead = true;
  if (added.catching_up() && !added.dead) pump_peer(added, 4);
  m_stats.subscribers = m_peers.size();
  m_has_backpressure = m_has_backpressure || sub->policy == PolicyKind::backpressure;
}

void TcpPublisher::act(const TcpEvent& e) {
  if (m_closed && e.kind == TcpEvent::Kind::subscribe) return;  // leaving: greets nobody new
  if (e.kind == TcpEvent::Kind::subscribe) {
    if (!e.sub->dead) join(e.sub);
    return;
  }
  auto peer = std::find_if(m_peers.begin(), m_peers.end(), [&](const Peer& p) { return p.sub == e.sub; });
  if (peer == m_peers.end()) return;
  if (e.kind == TcpEvent::Kind::bye_seen) {
    peer->bye_seen = true;
  } else if (peer->group.empty()) {
    handle_ack(*peer, {e.sub->subscription_id, m_config.publisher_id, e.seq});
  } else {
    member_acked(*peer, e.seq);
  }
}

void TcpPublisher::process_inbox() {
  m_events.swap(m_inbox);
  for (const auto& e : m_events) act(e);
  m_events.clear();
}

void TcpPublisher::drain_control() {
  m_ep->drain();
  if (!m_inbox.empty()) process_inbox();
  remove_dead_peers();
}

void TcpPublisher::remove_dead_peers() {
  const auto before = m_peers.size();
  bool any = false;
  for (auto& p : m_peers) {
    p.dead = p.dead || p.sub->dead;
    if (p.dead && !p.group.empty()) {
      member_left(p);  // its unacknowledged messages go to another member
      --m_group_members;
      p.group.clear();
    }
    any = any || p.dead;
  }
  if (!any) return;
  std::erase_if(m_peers, [&](const Peer& p) {
    if (p.dead) {
      log().info("publisher {:016x}: subscription {:016x} left", m_config.publisher_id, p.sub->subscription_id);
      if (p.catching_up()) --m_catching_up;
    }
    return p.dead;
  });
  m_stats.left += before - m_peers.size();
  m_stats.subscribers = m_peers.size();
  m_has_backpressure = std::any_of(m_peers.begin(), m_peers.end(),
                                   [](const Peer& p) { return p.sub->policy == PolicyKind::backpressure; });
}

const TcpPublisher::Peer* TcpPublisher::blocking_peer(std::int64_t needed) const noexcept {
  for (const auto& p : m_peers) {
    // A peer catching up is sent history at its own pace, nothing live: it holds nobody.
    if (p.sub->policy == PolicyKind::backpressure && p.sub->credit < needed && !p.dead && !p.sub->dead &&
        !p.catching_up() && p.group.empty()) {
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
    m_stats.last_blocker = blocker->sub->subscription_id;
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
        if (p.sub->policy == PolicyKind::backpressure && p.sub->credit < needed &&
            !send_control(p.sub->routing_id, std::span(buf).first(n)) && zmq_errno() == EHOSTUNREACH) {
          p.dead = true;
        }
      }
      next_probe = now + std::chrono::milliseconds(50);
    }
    const auto wait = std::min(deadline, next_probe) - now;
    m_ep->wait(m_ep->shared() ? lock_slice
                              : std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(wait),
                                           lock_slice, std::chrono::milliseconds(50)));
    drain_control();
    blocker = blocking_peer(needed);
    if (blocker != nullptr && m_ep->shared()) {
      // Let the endpoint's other publishers in (their credit comes through the same socket);
      // the next round's poll reads what came meanwhile.
      m_ep->mutex.unlock();
      std::this_thread::yield();
      m_ep->mutex.lock();
      blocker = blocking_peer(needed);
    }
  }
  m_stats.blocked_ns += static_cast<std::uint64_t>((clock::now() - start).count());
  return {};
}

Result<void> TcpPublisher::reserve(std::chrono::nanoseconds timeout) {
  std::lock_guard lock(m_ep->mutex);
  return reserve_locked(timeout);
}

Result<void> TcpPublisher::reserve_locked(std::chrono::nanoseconds timeout) {
  if (m_closed) return fail(Errc::closed, "publisher closed");
  if (m_service_countdown-- == 0) {
    m_service_countdown = service_every;
    drain_control();
  } else if (!m_inbox.empty()) {
    process_inbox();  // another publisher on the endpoint read something for us
    remove_dead_peers();
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
    flush_locked();
    drain_control();
    if (blocking_peer(1) != nullptr) return wait_for_credit(1, clock::now() + timeout);
  }
  return {};
}

Result<void> TcpPublisher::send(std::span<const std::byte> envelope, std::uint64_t seq, std::chrono::nanoseconds timeout) {
  std::lock_guard lock(m_ep->mutex);
  // A durable publisher reserved already (before keeping the message); doing it again
  // finds the room it made.
  if (auto room = reserve_locked(timeout); !room) return room;
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
  if (m_batch_count > 0 && m_batch.size() + batch_entry_header_bytes + padded > m_config.batch_bytes) flush_locked();
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
  if (++m_batch_count >= m_config.batch_messages || m_batch.size() >= m_config.batch_bytes) flush_locked();
}

void TcpPublisher::flush() {
  std::lock_guard lock(m_ep->mutex);
  flush_locked();
}

void TcpPublisher::flush_locked() {
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
    if (p.dead || p.catching_up() || !p.group.empty()) continue;
    auto& sub = *p.sub;
    if (zmq_send(m_sock, sub.routing_id.data(), sub.routing_id.size(), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
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
    if (zmq_msg_send(&share, m_sock, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&share);
      p.dead = any_dead = true;
      continue;
    }
    if (sub.policy == PolicyKind::backpressure) sub.credit -= envelopes;
  }
  zmq_msg_close(&msg);
  if (m_group_members > 0) send_to_groups(frame, envelopes, first_seq);
  if (any_dead) remove_dead_peers();
}

std::size_t TcpPublisher::service() {
  std::lock_guard lock(m_ep->mutex);
  flush_locked();
  drain_control();
  if (m_catching_up > 0) pump_history(false);
  if (m_group_members > 0) pump_groups();
  return m_peers.size();
}

Result<std::size_t> TcpPublisher::wait_for_subscribers(std::size_t n, clock::time_point deadline) {
  std::unique_lock lock(m_ep->mutex);
  for (;;) {
    drain_control();
    const auto attached = m_peers.size();
    if (attached >= n) return attached;
    const auto now = clock::now();
    if (now >= deadline) {
      return fail(Errc::timed_out, std::to_string(attached) + " of " + std::to_string(n) + " subscribers attached");
    }
    if (m_ep->shared()) {
      lock.unlock();
      std::this_thread::sleep_for(lock_slice);
      lock.lock();
    } else {
      m_ep->wait(std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now),
                            std::chrono::milliseconds(1), std::chrono::milliseconds(20)));
    }
  }
}

void TcpPublisher::close(std::uint64_t last_seq) {
  std::unique_lock lock(m_ep->mutex);
  if (m_closed) return;
  flush_locked();
  m_closed = true;
  drain_control();
  // Waits for input up to one slice; with neighbours on the endpoint, lets them in meanwhile.
  const auto pause = [&] {
    if (m_ep->shared()) {
      lock.unlock();
      std::this_thread::sleep_for(lock_slice);
      lock.lock();
    } else {
      m_ep->wait(lock_slice);
    }
    drain_control();
  };
  // Subscriptions still catching up get the rest of the history first (up to the linger time).
  const auto history_deadline = clock::now() + std::chrono::milliseconds(linger_ms);
  while (m_catching_up > 0 && clock::now() < history_deadline) {
    pump_history(false);
    if (m_catching_up == 0) break;
    pause();
  }
  std::array<std::byte, 32> buf;
  const auto n = encode_bye(buf, {m_config.publisher_id, last_seq});
  // The BYE tells a subscriber how long the tail was; behind a full pipe it waits for
  // room (the subscriber is draining) up to the linger time, then gives up.
  std::vector<std::shared_ptr<TcpSubscription>> pending;
  for (const auto& p : m_peers) {
    if (!p.dead) pending.push_back(p.sub);
  }
  const auto deadline = clock::now() + std::chrono::milliseconds(linger_ms);
  std::vector<std::shared_ptr<TcpSubscription>> answering;  // sent BYE: they answer it with BYE_SEEN
  while (!pending.empty()) {
    std::erase_if(pending, [&](const std::shared_ptr<TcpSubscription>& s) {
      if (send_control(s->routing_id, std::span(buf).first(n))) {
        answering.push_back(s);
        return true;
      }
      return zmq_errno() != EAGAIN;
    });
    if (pending.empty() || clock::now() >= deadline) break;
    pause();
  }
  // A subscriber that answers BYE has received everything sent before it. Until then the
  // socket stays open and polled: closing it right after a burst could lose the tail that
  // was still on its way (and the BYE with it) on a loaded host. A peer that never answers
  // (an older or foreign subscriber, a dead one) costs at most the rest of the linger time.
  const auto answered = [&](const std::shared_ptr<TcpSubscription>& s) {
    return s->dead || std::none_of(m_peers.begin(), m_peers.end(),
                                   [&](const Peer& p) { return p.sub == s && !p.dead && !p.bye_seen; });
  };
  while (!answering.empty() && clock::now() < deadline) {
    std::erase_if(answering, answered);
    if (answering.empty()) break;
    pause();
  }
  m_ep->detach(*this);  // nothing more is posted to us
}

}  // namespace rill::detail::tcp
