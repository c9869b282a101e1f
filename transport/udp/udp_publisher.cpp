#include "udp_publisher.hpp"

#include <poll.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "base/logging.hpp"

namespace rill::detail::udp {

namespace {

// Control is read every this many publishes (a read that finds nothing is a system call).
constexpr unsigned service_every = 64;
// Datagrams handed to the kernel per sendmmsg/recvmmsg call.
constexpr unsigned io_batch = 64;
constexpr unsigned ctl_batch = 16;
constexpr std::size_t ctl_buffer_bytes = 2048;
// Heartbeats follow a burst quickly (tail loss shows at once) and then thin out.
constexpr auto hb_min = std::chrono::milliseconds(1);
constexpr auto hb_max = std::chrono::milliseconds(100);
constexpr auto hb_discovery = std::chrono::milliseconds(10);
// One NAKed datagram is multicast again at most once per this interval, however many
// receivers ask: it reaches them all.
constexpr auto retransmit_holdoff = std::chrono::microseconds(1500);
// A subscriber silent for this long (it sends STATUS every 200 ms) is gone.
constexpr auto receiver_timeout = std::chrono::milliseconds(3000);
constexpr std::size_t max_receivers = 1024;
// History datagrams sent to each catching-up subscription per publish (the live path
// must not stall) and per service() call.
constexpr unsigned history_per_publish = 4;
constexpr unsigned history_per_service = 64;

void wait_fd(int fd, short events, std::chrono::nanoseconds timeout) {
  pollfd p{fd, events, 0};
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
  ::poll(&p, 1, static_cast<int>(std::clamp<long long>(ms, 0, 100)));
}

}  // namespace

Result<std::unique_ptr<PublisherTransport>> UdpPublisher::create(NodeCore&, const Endpoint& ep,
                                                                 const PublisherConfig& config) {
  auto options = parse_options(ep);
  if (!options) return std::unexpected(options.error());
  if (config.history != nullptr && !options->reliable) {
    return fail(Errc::invalid_argument,
                "a transient_local or persistent publisher needs reliable=1 on udp: best effort cannot promise a "
                "seamless history");
  }
  auto sock = UdpSocket::open_sender(*options);
  if (!sock) return std::unexpected(sock.error());
  const auto local = sock->local_address();
  log().info("publisher {:016x} sends to udp {} from {} (reliable={}, mtu={}) topic '{}'", config.publisher_id,
             to_string(options->group, options->port), to_string(local.sin_addr, ntohs(local.sin_port)),
             options->reliable ? 1 : 0, options->mtu, config.topic);
  return std::unique_ptr<PublisherTransport>(new UdpPublisher(std::move(*sock), *options, config));
}

UdpPublisher::UdpPublisher(UdpSocket sock, const UdpOptions& options, const PublisherConfig& config)
    : m_sock(std::move(sock)),
      m_options(options),
      m_config(config),
      // Best effort keeps only what sendmmsg has not sent yet.
      // Records: one per datagram; a full window of the smallest (single small message)
      // datagrams needs about window_bytes / 128 of them.
      // (Never less than a few sendmmsg batches of full datagrams: unsent ones must not be
      // overwritten.)
      m_window(std::max(options.reliable ? options.window_bytes : 0, 4 * io_batch * options.max_datagram()),
               options.reliable ? std::clamp<std::size_t>(options.window_bytes / 128, 4096, 1u << 19) : 4 * io_batch),
      m_fault(options.fault),
      m_ctl_bufs(ctl_batch * ctl_buffer_bytes),
      m_ctl_from(ctl_batch),
      m_iov(io_batch),
      m_msgs(io_batch),
      m_hb_interval(hb_min),
      m_verifier(options.auth, options.auth_max_skew_s) {
  m_history = config.history;
  if (m_history != nullptr) {
    m_next_seq = m_history->next_sequence();  // persistent: continues from the log
    m_hist_dgram.resize(options.max_datagram());
  }
  m_group.sin_family = AF_INET;
  m_group.sin_addr = options.group;
  m_group.sin_port = htons(options.port);
  m_receivers.reserve(16);
}

UdpPublisher::~UdpPublisher() = default;

void UdpPublisher::refresh() {
  m_stats.subscribers = m_receivers.size();  // every one matches (others are only told so)
  m_catching_up = static_cast<std::size_t>(
      std::count_if(m_receivers.begin(), m_receivers.end(), [](const Receiver& r) { return r.catching_up(); }));
  m_has_backpressure = std::any_of(m_receivers.begin(), m_receivers.end(),
                                   [](const Receiver& r) { return r.matches && r.policy == PolicyKind::backpressure; });
}

template <class Pred>
std::size_t UdpPublisher::drop_receivers(Pred&& pred) {
  std::size_t dropped = 0;
  for (std::size_t i = 0; i < m_receivers.size();) {
    if (!pred(m_receivers[i])) {
      ++i;
      continue;
    }
    // A group member's unacknowledged messages go back to its group first.
    if (m_receivers[i].member) member_left(m_receivers[i]);
    m_receivers.erase(m_receivers.begin() + static_cast<std::ptrdiff_t>(i));
    ++dropped;
  }
  if (dropped > 0) {
    m_stats.left += dropped;
    for (auto& g : m_groups) g.next_member = 0;
    refresh();
  }
  return dropped;
}

void UdpPublisher::expire(clock::time_point now) {
  drop_receivers([&](const Receiver& r) {
    if (now - r.last_seen <= receiver_timeout) return false;
    log().info("publisher {:016x}: subscription {:016x} went silent; dropped", m_config.publisher_id,
               r.subscription_id);
    return true;
  });
}

void UdpPublisher::drain_control(clock::time_point now) {
  send_pending();  // a NAK may ask for what is still queued: send it first
  for (;;) {
    for (unsigned i = 0; i < ctl_batch; ++i) {
      m_iov[i] = {m_ctl_bufs.data() + i * ctl_buffer_bytes, ctl_buffer_bytes};
      m_msgs[i].msg_hdr = {};
      m_msgs[i].msg_hdr.msg_name = &m_ctl_from[i];
      m_msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
      m_msgs[i].msg_hdr.msg_iov = &m_iov[i];
      m_msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int got = m_sock.recv_batch(m_msgs.data(), ctl_batch);
    const auto now_s = got > 0 && m_verifier.keyed() ? unix_seconds() : 0;
    for (int i = 0; i < got; ++i) {
      const std::span<const std::byte> wire(m_ctl_bufs.data() + i * ctl_buffer_bytes, m_msgs[i].msg_len);
      if ((m_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
        ++m_stats.bad_control;
        continue;
      }
      const auto& from = m_ctl_from[i];
      // Before anything reads it: the MAC, the scope and the replay window.
      std::span<const std::byte> dgram;
      if (const auto v = m_verifier.check(wire, scope_unicast, m_replay, now_s, dgram); v != AuthVerdict::ok) {
        auth_rejected(v, from);
        continue;
      }
      if (!m_fault.active()) {
        handle(dgram, from, now);
        continue;
      }
      switch (m_fault.decide(false)) {
        case Fault::drop:
          break;
        case Fault::duplicate:
          handle(dgram, from, now);
          handle(dgram, from, now);
          break;
        case Fault::hold:
          if (!m_held.empty()) handle(m_held, m_held_from, now);
          m_held.assign(dgram.begin(), dgram.end());
          m_held_from = from;
          break;
        case Fault::pass:
          handle(dgram, from, now);
          if (!m_held.empty()) {
            handle(m_held, m_held_from, now);
            m_held.clear();
          }
          break;
      }
    }
    if (got < static_cast<int>(ctl_batch)) break;
  }
  expire(now);
  flush_acks();
}

void UdpPublisher::auth_rejected(AuthVerdict why, const sockaddr_in& from) {
  ++m_stats.auth_rejected;
  if (m_auth_logged) return;
  m_auth_logged = true;
  log().warn("publisher {:016x}: refused a datagram from {} ({}{}); counting further ones silently",
             m_config.publisher_id, to_string(from.sin_addr, ntohs(from.sin_port)), to_string(why),
             m_verifier.keyed() ? "" : ": it is authenticated and this endpoint has no auth_key_file");
}

void UdpPublisher::handle(std::span<const std::byte> dgram, const sockaddr_in& from, clock::time_point now) {
  const auto d = decode(dgram, m_config.max_message_bytes, m_verifier.keyed());
  if (!d || (d->header.type != Type::status && d->header.type != Type::nak && d->header.type != Type::leave)) {
    ++m_stats.bad_control;
    if (!m_bad_logged) {
      m_bad_logged = true;
      log().warn(
          "publisher {:016x}: discarded a malformed or misdirected datagram ({} bytes) from {}; counting "
          "further ones silently",
          m_config.publisher_id, dgram.size(), to_string(from.sin_addr, ntohs(from.sin_port)));
    }
    return;
  }
  // Meant for an earlier publisher on this address: not an error, just stale.
  if (d->header.publisher_id != m_config.publisher_id) return;
  switch (d->header.type) {
    case Type::status:
      on_status(d->header, d->status, d->durable ? &d->request : nullptr, from, now);
      break;
    case Type::nak:
      on_nak(d->nak, from, now);
      break;
    default:
      if (drop_receivers([&](const Receiver& r) { return r.subscription_id == d->leave_subscription; }) > 0) {
        log().info("publisher {:016x}: subscription {:016x} left", m_config.publisher_id, d->leave_subscription);
      }
      break;
  }
}

void UdpPublisher::on_status(const Header& h, const Status& s, const DurableRequest* q, const sockaddr_in& from,
                             clock::time_point now) {
  auto r = std::find_if(m_receivers.begin(), m_receivers.end(),
                        [&](const Receiver& x) { return x.subscription_id == s.subscription_id; });
  if (r == m_receivers.end()) {
    if (m_closed || m_receivers.size() >= max_receivers) return;
    if (!std::string_view(m_config.topic).starts_with(s.prefix)) {
      // Not for it: say so (it stops asking and ignores our datagrams), keep nothing.
      std::array<std::byte, 32> buf;
      const auto n = encode_filtered(buf, m_config.publisher_id, s.subscription_id, m_next_seq);
      m_sock.send_to(std::span(buf).first(n), from);
      return;
    }
    Receiver fresh;
    fresh.subscription_id = s.subscription_id;
    fresh.policy = static_cast<PolicyKind>(s.policy);
    fresh.window = std::min<std::uint32_t>(s.window, max_policy_messages);
    fresh.join_seq = m_next_seq;
    fresh.consumed = fresh.received = m_next_seq - 1;
    fresh.matches = std::string_view(m_config.topic).starts_with(s.prefix);
    fresh.reliable = (h.flags & flag_reliable) != 0;
    if ((q != nullptr || !s.group.empty()) && !fresh.reliable) return;  // refused by the subscriber itself
    if (q != nullptr) {
      const auto offered = m_history != nullptr ? m_history->offered() : DurabilityKind::volatile_;
      std::string_view refused;
      if (check_request(offered, admission_request(s, *q), &refused) != Refusal::none) {
        reject(s, *q, offered, refused, from);
        return;
      }
    }
    if (!s.group.empty()) {
      if (!join_group(fresh, s, q, from)) return;
    } else if (!admit(fresh, s, q, from)) {
      return;
    } else if (q == nullptr && (h.flags & flag_heard) != 0) {
      // It has been listening since received_seq + 1 (for a publisher that appeared after
      // it: our first message): it starts there while our window still holds that.
      const auto oldest = m_window.oldest_seq(next_unsent());
      fresh.join_seq = std::clamp(s.received_seq + 1, std::min(oldest, m_next_seq), m_next_seq);
      fresh.consumed = fresh.received = fresh.join_seq - 1;
    }
    if (!fresh.durable_name.empty() && !fresh.member) {
      // (Group members may share a durable name: the group's state is the ledger.)
      // A durable name is held by one subscriber at a time (its state file is locked): an
      // earlier holder is gone (killed, so it never said LEAVE) and must not hold anyone.
      if (drop_receivers([&](const Receiver& x) { return !x.member && x.durable_name == fresh.durable_name; }) > 0) {
        log().info("publisher {:016x}: durable name '{}' rejoined as subscription {:016x}; its earlier one is gone",
                   m_config.publisher_id, fresh.durable_name, s.subscription_id);
      }
    }
    m_receivers.push_back(std::move(fresh));
    r = m_receivers.end() - 1;
    ++m_stats.joined;
    log().info("publisher {:016x}: subscription {:016x} joined from {} (prefix '{}', {}, {}, reliable={}, matches={})",
               m_config.publisher_id, s.subscription_id, to_string(from.sin_addr, ntohs(from.sin_port)), s.prefix,
               to_string(Policy{r->policy, r->window}), to_string(r->durability), r->reliable ? 1 : 0, r->matches);
    refresh();
  }
  r->addr = from;
  r->last_seen = now;
  if ((h.flags & flag_welcomed) == 0) {
    // First contact, or our WELCOME was lost: (re)send it with the same start.
    std::array<std::byte, 40> buf;
    const auto n = encode_welcome(buf, m_config.publisher_id, {s.subscription_id, r->join_seq, r->lost}, r->durable());
    m_sock.send_to(std::span(buf).first(n), from);
    return;
  }
  r->welcomed = true;
  // Positions only move forward (a late, reordered STATUS says less). A group member's
  // are in its own stream's sequences.
  const auto sent = r->member ? r->member->next - 1 : last_sent();
  r->consumed = std::max(r->consumed, std::min(s.consumed_seq, sent));
  r->received = std::max(r->received, std::min(s.received_seq, sent));
  if (q != nullptr) {
    if (r->member) {
      if (const auto* g = group_of(*r); g != nullptr && g->durable) member_acked(*r, q->ack_seq);
    } else {
      note_ack(*r, q->ack_seq);
    }
  }
  r->bye_seen = r->bye_seen || (h.flags & flag_bye_seen) != 0;
}

void UdpPublisher::on_nak(const Nak& n, const sockaddr_in& from, clock::time_point now) {
  ++m_counters.naks;
  if (!m_groups.empty()) {
    const auto r = std::find_if(m_receivers.begin(), m_receivers.end(),
                                [&](const Receiver& x) { return x.subscription_id == n.subscription_id; });
    if (r != m_receivers.end() && r->member) return member_nak(*r, n, now);
  }
  const auto oldest = m_window.oldest_seq(next_unsent());
  bool unavailable = false;
  Receiver* durable = nullptr;
  if (m_history != nullptr) {
    const auto r = std::find_if(m_receivers.begin(), m_receivers.end(),
                                [&](const Receiver& x) { return x.subscription_id == n.subscription_id; });
    if (r != m_receivers.end() && r->durable() && r->matches) durable = &*r;
  }
  std::uint64_t history_oldest = 0;
  for (std::uint16_t i = 0; i < n.count; ++i) {
    auto range = n.ranges[i];
    if (durable != nullptr) {
      // Catching up, it asks for all it has not got: what the cursor has not sent yet
      // comes from the cursor. Older than the window comes from the history.
      if (durable->catching_up()) range.last = std::min(range.last, durable->cursor->position() - 1);
      if (range.first > range.last) continue;
      if (range.first < oldest) {
        const auto until = std::min(range.last, oldest - 1);
        history_oldest = serve_from_history(*durable, range.first, until);
        if (range.first < history_oldest) unavailable = true;
        range.first = until + 1;
        if (range.first > range.last) continue;
      }
    }
    if (range.first < oldest) {
      unavailable = true;
      m_counters.unavailable += std::min(range.last + 1, oldest) - range.first;
      range.first = oldest;
    }
    range.last = std::min(range.last, last_sent());
    if (range.first > range.last) continue;
    m_window.find(range.first, range.last, range.frag_first, range.frag_last, [&](RetransmitWindow::Record& rec) {
      if (now - rec.last_resent < retransmit_holdoff) return;
      rec.last_resent = now;
      mark_retransmit(rec.bytes());
      // Multicast: every receiver that lost it gets it from this one send.
      if (m_sock.send_to(rec.bytes(), m_group)) ++m_counters.retransmits;
    });
  }
  // Tell the asker what is gone, so it reports the loss instead of asking again (a
  // durable subscription: what the history no longer has).
  if (unavailable) heartbeat(now, Type::heartbeat, &from, durable != nullptr ? history_oldest : 0);
}

void UdpPublisher::heartbeat(clock::time_point, Type type, const sockaddr_in* to, std::uint64_t oldest) {
  std::array<std::byte, 32> buf;
  // What was sent: messages held in an unsent batch are not announced (they would look lost).
  const auto next = next_unsent();
  if (oldest == 0) oldest = m_window.oldest_seq(next);
  const auto n = encode_heartbeat(buf, type, m_config.publisher_id, m_options.reliable ? flag_reliable : 0,
                                  {next, std::max<std::uint64_t>(1, std::min(next, oldest))});
  m_sock.send_to(std::span(buf).first(n), to != nullptr ? *to : m_group);
}

void UdpPublisher::maybe_heartbeat(clock::time_point now) {
  if (m_sent_since_hb) {
    // Data is flowing: the first heartbeat comes hb_min after it stops.
    m_sent_since_hb = false;
    m_hb_interval = hb_min;
    m_next_hb = now + hb_min;
    return;
  }
  if (now < m_next_hb) return;
  heartbeat(now);
  if (!m_groups.empty()) member_heartbeats(Type::heartbeat, false);
  m_next_hb = now + m_hb_interval;
  m_hb_interval = std::min<clock::duration>(m_hb_interval * 2, hb_max);
}

const UdpPublisher::Receiver* UdpPublisher::blocker(std::uint64_t seq) const noexcept {
  for (const auto& r : m_receivers) {
    // One catching up holds the publisher too (its consumed position is in its history):
    // over multicast it receives live messages anyway, and it could never catch up with a
    // publisher that outruns what it handles.
    if (!r.member && r.matches && r.policy == PolicyKind::backpressure && seq > r.consumed + r.window) return &r;
  }
  return m_groups.empty() ? nullptr : blocking_group();
}

Result<void> UdpPublisher::wait_for_room(std::uint64_t seq, clock::time_point deadline) {
  const auto start = clock::now();
  auto now = start;
  for (const Receiver* b = blocker(seq); b != nullptr; b = blocker(seq)) {
    m_stats.last_blocker = b->subscription_id;
    if (now >= deadline) {
      ++m_stats.timeouts;
      m_stats.blocked_ns += static_cast<std::uint64_t>((now - start).count());
      return fail(Errc::timed_out, "backpressure: a subscriber's window stayed full until the deadline");
    }
    // Heartbeats keep going so a receiver that lost our tail asks for it (and can
    // then consume and open its window).
    maybe_heartbeat(now);
    wait_fd(m_sock.fd(), POLLIN, std::min<clock::duration>(deadline - now, std::chrono::milliseconds(1)));
    now = clock::now();
    drain_control(now);
    if (m_catching_up > 0) pump_history(history_per_service);
    if (m_group_resend > 0) pump_groups(history_per_service);
  }
  m_stats.blocked_ns += static_cast<std::uint64_t>((clock::now() - start).count());
  return {};
}

Result<void> UdpPublisher::reserve(std::chrono::nanoseconds timeout) {
  // A durable publisher keeps a message only once it can be sent: wait for room first.
  // Control is read here, not in its send(): a subscription joining between the two
  // could hold a message that is kept already.
  if (m_closed) return fail(Errc::closed, "publisher closed");
  if (m_countdown-- == 0 || m_receivers.empty()) {
    m_countdown = service_every;
    const auto now = clock::now();
    drain_control(now);
    maybe_heartbeat(now);
  }
  if (m_has_backpressure && blocker(m_next_seq) != nullptr) {
    close_batch();
    send_pending();
    drain_control(clock::now());
    if (m_catching_up > 0) pump_history(history_per_publish);
    if (blocker(m_next_seq) != nullptr) return wait_for_room(m_next_seq, clock::now() + timeout);
  }
  return {};
}

Result<void> UdpPublisher::send(std::span<const std::byte> envelope, std::uint64_t seq,
                                std::chrono::nanoseconds timeout) {
  if (m_closed) return fail(Errc::closed, "publisher closed");
  if (m_history == nullptr && (m_countdown-- == 0 || m_receivers.empty())) {
    m_countdown = service_every;
    const auto now = clock::now();
    drain_control(now);
    maybe_heartbeat(now);
  }
  // Late joiners and durable subscriptions first: one that reaches the live sequence now
  // takes this message live.
  if (m_catching_up > 0) pump_history(history_per_publish);
  if (m_group_resend > 0) pump_groups(history_per_publish);
  if (m_has_backpressure && blocker(seq) != nullptr) {
    // What is held back must go out first: the receiver cannot consume it otherwise.
    close_batch();
    send_pending();
    drain_control(clock::now());
    if (blocker(seq) != nullptr) {
      if (auto waited = wait_for_room(seq, clock::now() + timeout); !waited) return waited;
    }
  }
  const auto max = m_options.max_datagram();
  const auto need = entry_bytes(envelope.size());
  if (data_header_bytes + need > max) {
    close_batch();
    send_fragments(envelope, seq);
  } else {
    if (m_open_count > 0 && m_open_len + need > max) close_batch();
    if (m_open_count == 0) {
      m_open = m_window.open(max);
      m_open_len = data_header_bytes;
      m_open_first = seq;
    }
    m_open_len = append_entry(m_open, m_open_len, envelope);
    if (++m_open_count >= m_config.batch_messages || m_open_len >= m_config.batch_bytes) close_batch();
  }
  // A datagram is sent as soon as it is closed (unbatched: every message; batched: when
  // the batch is full), as the Publisher API promises; sendmmsg carries runs of
  // fragments and retransmissions.
  if (m_unsent > 0) send_pending();
  // Consumer groups: one member of each gets it too, on its own stream.
  if (!m_groups.empty()) send_to_groups(envelope, seq);
  ++m_stats.sent;
  m_next_seq = seq + 1;
  m_sent_since_hb = true;
  return {};
}

void UdpPublisher::close_batch() {
  if (m_open_count == 0) return;
  encode_data_header(m_open, m_config.publisher_id, m_open_first, m_open_count);
  m_window.commit(m_open_len, m_open_first, m_open_count, false, 0);
  m_open_count = 0;
  ++m_unsent;
}

void UdpPublisher::send_fragments(std::span<const std::byte> envelope, std::uint64_t seq) {
  fragment_into(m_window, envelope, seq, [this](std::span<std::byte>) {
    if (++m_unsent >= io_batch) send_pending();
  });
}

void UdpPublisher::send_pending() {
  while (m_unsent > 0) {
    const auto n = static_cast<unsigned>(std::min<std::size_t>(m_unsent, io_batch));
    const auto base = m_window.size() - m_unsent;
    for (unsigned i = 0; i < n; ++i) {
      auto bytes = m_window.at(base + i).bytes();
      m_iov[i] = {bytes.data(), bytes.size()};
      m_msgs[i].msg_hdr = {};
      m_msgs[i].msg_hdr.msg_name = &m_group;
      m_msgs[i].msg_hdr.msg_namelen = sizeof m_group;
      m_msgs[i].msg_hdr.msg_iov = &m_iov[i];
      m_msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int sent = m_sock.send_batch(m_msgs.data(), n);
    if (sent == 0 && (errno == EAGAIN || errno == ENOBUFS)) {
      // The send buffer is full: give the kernel a moment rather than lose it here.
      wait_fd(m_sock.fd(), POLLOUT, std::chrono::milliseconds(5));
      sent = m_sock.send_batch(m_msgs.data(), n);
    }
    if (sent == 0) {
      // Still refused (or a hard error): these count as lost on the wire; reliable
      // receivers ask for them again from the window.
      m_stats.peer_drops += n;
      sent = static_cast<int>(n);
    }
    m_counters.datagrams += static_cast<std::uint64_t>(sent);
    m_unsent -= static_cast<std::size_t>(sent);
  }
}

void UdpPublisher::flush() {
  close_batch();
  send_pending();
  if (!m_groups.empty()) flush_members();
}

std::size_t UdpPublisher::service() {
  flush();
  const auto now = clock::now();
  drain_control(now);
  if (m_catching_up > 0) pump_history(history_per_service);
  if (m_group_resend > 0) pump_groups(history_per_service);
  maybe_heartbeat(now);
  return m_receivers.size();
}

Result<std::size_t> UdpPublisher::wait_for_subscribers(std::size_t n, clock::time_point deadline) {
  flush();
  for (;;) {
    const auto now = clock::now();
    drain_control(now);
    const auto attached = static_cast<std::size_t>(
        std::count_if(m_receivers.begin(), m_receivers.end(), [](const Receiver& r) { return r.matches; }));
    if (attached >= n) return attached;
    if (now >= deadline) {
      return fail(Errc::timed_out, std::to_string(attached) + " of " + std::to_string(n) + " subscribers attached");
    }
    // Subscribers find us by our heartbeats: keep them frequent while waiting.
    if (now >= m_next_hb) {
      heartbeat(now);
      m_next_hb = now + hb_discovery;
    }
    wait_fd(m_sock.fd(), POLLIN, std::min<clock::duration>(deadline - now, hb_discovery));
  }
}

void UdpPublisher::close(std::uint64_t last_seq) {
  if (m_closed) return;
  flush();
  m_closed = true;
  // BYE until every subscriber confirmed it (and, if reliable, has everything up to
  // last_seq or gave it up), serving NAKs meanwhile; at most the linger time.
  const auto start = clock::now();
  const auto deadline = start + m_options.linger;
  auto interval = std::chrono::milliseconds(2);
  auto now = start;
  for (;;) {
    heartbeat(now, Type::bye);
    // Group members are told BYE only once they acknowledged everything they were given
    // (a subscriber stops acknowledging a publisher that said BYE); until then their
    // tails are announced, so a lost last datagram is asked for.
    if (!m_groups.empty()) member_heartbeats(groups_settled() ? Type::bye : Type::heartbeat, true);
    const auto until = std::min(deadline, now + interval);
    while (now < until) {
      // Subscriptions still catching up get the rest of the history first.
      if (m_catching_up > 0) pump_history(history_per_service);
      if (m_group_resend > 0) pump_groups(history_per_service);
      const bool busy = m_catching_up > 0 || m_group_resend > 0;
      wait_fd(m_sock.fd(), POLLIN, busy ? std::chrono::milliseconds(1) : until - now);
      now = clock::now();
      drain_control(now);
    }
    const bool done = std::all_of(m_receivers.begin(), m_receivers.end(), [&](const Receiver& r) {
      const auto last = r.member ? r.member->next - 1 : last_seq;
      return r.bye_seen && !r.catching_up() && (!r.reliable || r.received >= last);
    });
    if ((done && groups_settled()) || now >= deadline) break;
    interval = std::min(interval * 2, std::chrono::milliseconds(50));
  }
  log().info(
      "publisher {:016x} closed after seq {}: {} datagrams, {} NAKs, {} retransmits, {} asked-for messages "
      "already gone, {} history datagrams, {} messages answered from the history, {} group datagrams, {} group "
      "retransmits",
      m_config.publisher_id, last_seq, m_counters.datagrams, m_counters.naks, m_counters.retransmits,
      m_counters.unavailable, m_counters.history_datagrams, m_counters.history_naked, m_counters.group_datagrams,
      m_counters.group_retransmits);
}

}  // namespace rill::detail::udp
