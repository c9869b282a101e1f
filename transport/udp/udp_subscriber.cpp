#include "udp_subscriber.hpp"

#include <algorithm>
#include <array>

#include "base/logging.hpp"

namespace rill::detail::udp {

namespace {

// STATUS doubles as the keepalive; until WELCOMEd it is the join, retried quickly.
constexpr auto status_every = std::chrono::milliseconds(200);
constexpr auto join_retry = std::chrono::milliseconds(10);
// A publisher silent this long while we wait for a retransmission has vanished.
constexpr auto vanished_after = std::chrono::milliseconds(3000);
// A departed publisher's state is kept this long for late duplicates, then dropped.
constexpr auto forget_after = std::chrono::milliseconds(2000);
constexpr std::size_t max_remotes = 64;
// A refused durable request is asked again this often (the publisher may be restarted
// with more durability).
constexpr auto reject_retry = std::chrono::milliseconds(1000);
// A publisher id heard from a new address after its old address was silent this long is
// the same publisher restarted (a persistent publisher keeps its id from its log).
constexpr auto restart_silence = std::chrono::milliseconds(500);
// A durable subscription reports progress this often while messages (history) pour in,
// so the publisher's paced catch-up never waits for the periodic STATUS.
constexpr std::uint64_t status_step_messages = 512;
constexpr std::uint64_t status_step_bytes = 256u << 10;

}  // namespace

Result<std::unique_ptr<SubscriberTransport>> UdpSubscriber::create(NodeCore&, std::span<const Endpoint> eps,
                                                                   const SubscriberConfig& config) {
  if (config.prefix.size() > max_prefix_bytes)
    return fail(Errc::invalid_argument, "topic prefix longer than 1024 bytes");
  if (eps.size() > 7) return fail(Errc::invalid_argument, "a udp subscriber takes at most 7 endpoints");
  const bool durable = config.durability.kind != DurabilityKind::volatile_;
  if (config.durable_name.size() > max_name_bytes || config.group.size() > max_name_bytes)
    return fail(Errc::invalid_argument, "durable and group names are at most 255 bytes");
  const bool group = !config.group.empty();
  std::vector<UdpOptions> options;
  std::size_t buffer_bytes = 0;
  for (const auto& ep : eps) {
    auto o = parse_options(ep);
    if (!o) return std::unexpected(o.error());
    buffer_bytes = std::max(buffer_bytes, o->wire_datagram());
    if (!options.empty() && o->auth_key_file != options.front().auth_key_file) {
      return fail(Errc::invalid_argument,
                  "the udp endpoints of one subscriber must all use the same auth_key_file (or none): they share one "
                  "control socket (" +
                      ep.uri + ")");
    }
    if (durable && !o->reliable) {
      return fail(Errc::invalid_argument,
                  "a transient_local or persistent subscription needs reliable=1 on udp: best effort cannot promise a "
                  "seamless history (" +
                      ep.uri + ")");
    }
    if (group && !o->reliable) {
      return fail(
          Errc::invalid_argument,
          "a consumer group member needs reliable=1 on udp: best effort would lose its share of the messages (" +
              ep.uri + ")");
    }
    options.push_back(*o);
  }
  std::unique_ptr<UdpSubscriber> sub(new UdpSubscriber(config, (buffer_bytes + 15) & ~std::size_t{15}));
  // A durable subscription's history, and a group member's share, come to the control
  // socket: as big a buffer as the group's.
  auto control =
      UdpSocket::open_control(options.front(), durable || group ? std::max(options.front().rcvbuf, 1 << 20) : 1 << 20);
  if (!control) return std::unexpected(control.error());
  sub->m_control = std::move(*control);
  sub->m_fds.push_back(sub->m_control.fd());
  for (const auto& o : options) {
    auto sock = UdpSocket::open_group(o);
    if (!sock) return std::unexpected(sock.error());
    sub->m_fds.push_back(sock->fd());
    sub->m_groups.push_back(Group{.sock = std::move(*sock), .options = o});
    log().info("subscription {:016x} joined udp {} (reliable={})", config.subscription_id, to_string(o.group, o.port),
               o.reliable ? 1 : 0);
  }
  sub->m_fault = FaultInjector(options.front().fault);
  sub->m_verifier = Verifier(options.front().auth, options.front().auth_max_skew_s);
  sub->m_replay.resize(sub->m_groups.size() + 1);  // one per group socket, the last for control
  sub->m_durable = durable;
  sub->m_group = group;
  return std::unique_ptr<SubscriberTransport>(std::move(sub));
}

UdpSubscriber::UdpSubscriber(const SubscriberConfig& config, std::size_t buffer_bytes)
    : m_config(config),
      m_pool(new BufferPool(buffer_bytes)),
      m_fault(FaultConfig{}),
      m_rng(FaultConfig{.data = {}, .control = {}, .seed = config.subscription_id}) {
  m_pool->reserve();
  m_remotes.reserve(8);
}

UdpSubscriber::~UdpSubscriber() {
  for (auto& r : m_remotes) {
    std::array<std::byte, 32> buf;
    const auto n = encode_leave(buf, r.stream->id(), m_config.subscription_id);
    m_control.send_to(std::span(buf).first(n), r.stream->address());
  }
  if (m_counters.naks_sent + m_counters.unrecoverable + m_counters.incomplete > 0) {
    log().info(
        "subscription {:016x} (udp): {} NAKs sent, {} duplicates suppressed, {} messages unrecoverable, {} "
        "incomplete, {} refused for reassembly memory",
        m_config.subscription_id, m_counters.naks_sent, m_counters.duplicates, m_counters.unrecoverable,
        m_counters.incomplete, m_counters.reassembly_refused);
  }
  for (auto& h : m_held) {
    if (h.buffer != nullptr) release(h.buffer);
  }
  m_remotes.clear();  // their frames go back to the pool first
  m_pool->retire();
}

UdpSubscriber::Remote* UdpSubscriber::find(std::uint64_t publisher_id) noexcept {
  if (m_last_remote < m_remotes.size() && m_remotes[m_last_remote].stream->id() == publisher_id) {
    return &m_remotes[m_last_remote];
  }
  for (std::size_t i = 0; i < m_remotes.size(); ++i) {
    if (m_remotes[i].stream->id() == publisher_id) {
      m_last_remote = i;
      return &m_remotes[i];
    }
  }
  return nullptr;
}

UdpSubscriber::Remote* UdpSubscriber::discover(std::uint64_t publisher_id, std::uint32_t source,
                                               const sockaddr_in& from) {
  if (m_remotes.size() >= max_remotes) return nullptr;
  const auto& o = m_groups[source].options;
  StreamLimits limits{.reliable = o.reliable,
                      .max_message = m_config.max_message_bytes,
                      .reassembly_bytes = std::max<std::size_t>(m_config.max_message_bytes * 2, 16u << 20),
                      .durable = m_durable && !m_group,
                      .group = m_group};
  m_remotes.push_back(Remote{.stream = std::make_unique<PublisherStream>(publisher_id, source, from, limits,
                                                                         m_reassembly_in_use, m_counters)});
  m_remotes.back().stream->heard(m_now);
  m_timers_due = true;
  log().info("subscription {:016x}: publisher {:016x} found at {}", m_config.subscription_id, publisher_id,
             to_string(from.sin_addr, ntohs(from.sin_port)));
  return &m_remotes.back();
}

void UdpSubscriber::bad(FrameSink& sink, std::uint32_t source, std::size_t size) {
  sink.on_bad_frame(source, Errc::malformed, size);
}

void UdpSubscriber::process(Buffer* b, std::size_t len, const sockaddr_in& from, std::uint32_t source, bool control,
                            FrameSink& sink) {
  const std::span<const std::byte> bytes(b->data(), len);
  const auto d = decode(bytes, m_config.max_message_bytes, m_verifier.keyed());
  if (!d) return bad(sink, source, len);
  const auto type = d->header.type;
  const bool from_publisher = type == Type::data || type == Type::frag || type == Type::heartbeat ||
                              type == Type::bye || type == Type::welcome || type == Type::reject;
  // The group carries data, heartbeats and BYE; our control socket welcomes, refusals,
  // answers to NAKs, (durable) history and a group member's own stream. Anything else
  // there is misdirected.
  const bool member_stream = (d->header.flags & flag_group) != 0;
  const bool misdirected =
      control ? type == Type::bye && !member_stream : (type == Type::welcome || type == Type::reject || member_stream);
  if (!from_publisher || misdirected) return bad(sink, source, len);
  // A group member takes only its own stream (unicast); the multicast's data is everyone's
  // and its heartbeats describe the multicast sequence, so they only tell it the publisher
  // is there (discovery, liveness).
  const bool ignore = m_group && !control && type != Type::welcome && type != Type::reject;
  if (control && member_stream && !m_group) return bad(sink, source, len);
  Remote* r = find(d->header.publisher_id);
  if (r == nullptr) {
    if (control || type == Type::bye) return;  // not ours, or a publisher we never met leaving
    r = discover(d->header.publisher_id, source, from);
    if (r == nullptr) return bad(sink, source, len);
  }
  if (!control && !r->stream->welcomed()) {
    // Its WELCOME may be waiting on the control socket: take it before this data.
    const auto id = d->header.publisher_id;
    drain_control(sink);
    r = find(id);
    if (r == nullptr) return;
  }
  if (!same_address(r->stream->address(), from)) {
    // A known publisher id from another address is someone else's datagram, unless the
    // old address went silent: then it is that publisher restarted (a persistent one
    // keeps its id), and it starts over with us.
    if (control || (!r->stream->bye_seen() && m_now - r->stream->last_heard() < restart_silence)) {
      return bad(sink, source, len);
    }
    log().info("subscription {:016x}: publisher {:016x} restarted at {}", m_config.subscription_id,
               d->header.publisher_id, to_string(from.sin_addr, ntohs(from.sin_port)));
    m_remotes.erase(m_remotes.begin() + (r - m_remotes.data()));
    m_last_remote = 0;
    r = discover(d->header.publisher_id, source, from);
    if (r == nullptr) return bad(sink, source, len);
  }
  auto& s = *r->stream;
  s.heard(m_now);
  if (ignore || s.filtered()) return;  // not ours: never a gap, never asked for
  if (control && (type == Type::data || type == Type::frag)) m_history_flowing = true;
  switch (type) {
    case Type::data:
      for_each_entry(bytes, d->data.count, [&](std::uint32_t i, std::size_t offset, std::size_t length) {
        s.on_envelope(d->data.first_seq + i, b, offset, length);
      });
      break;
    case Type::frag:
      s.on_fragment(d->frag);
      break;
    case Type::heartbeat:
    case Type::bye:
      if (type == Type::bye && !s.bye_seen()) r->status_now = true;  // confirm it
      s.on_heartbeat(d->heartbeat, type == Type::bye, m_now, control);
      break;
    case Type::reject:
      if (d->reject.subscription_id != m_config.subscription_id || s.welcomed()) return;
      r->rejected = true;
      r->status_now = false;
      r->next_status = m_now + reject_retry;
      sink.on_reject(s.source(), s.id(), static_cast<DurabilityKind>(d->reject.offered),
                     static_cast<DurabilityKind>(d->reject.requested), d->reject.reason);
      return;
    default:                                                               // welcome
      if (d->welcome.subscription_id != m_config.subscription_id) return;  // meant for an earlier us
      if ((d->header.flags & flag_filtered) != 0) {
        if (!s.welcomed()) s.filter();  // its topic is not ours: no STATUS, no NAK, no count
        r->status_now = false;
        return;
      }
      if (!s.welcomed()) r->status_now = true;
      r->rejected = false;
      s.welcome(d->welcome.next_seq, d->welcome.lost, sink);
      break;
  }
  if (s.gap_pending() || r->status_now) m_timers_due = true;
}

void UdpSubscriber::inject(Buffer* b, std::size_t len, const sockaddr_in& from, std::uint32_t source, bool control,
                           FrameSink& sink) {
  if (!m_fault.active()) return process(b, len, from, source, control, sink);
  const bool data = len > 4 && (b->data()[4] == std::byte{1} || b->data()[4] == std::byte{2});
  auto& held = m_held[data ? 0 : 1];
  const auto release_held = [&] {
    if (held.buffer == nullptr) return;
    Held h = held;
    held.buffer = nullptr;
    process(h.buffer, h.length, h.from, h.source, h.control, sink);
    release(h.buffer);
  };
  switch (m_fault.decide(data)) {
    case Fault::drop:
      break;
    case Fault::duplicate:
      process(b, len, from, source, control, sink);
      process(b, len, from, source, control, sink);
      break;
    case Fault::hold:
      release_held();
      retain(b);
      held = Held{b, len, from, source, control};
      break;
    case Fault::pass:
      process(b, len, from, source, control, sink);
      release_held();
      break;
  }
}

std::size_t UdpSubscriber::receive(const UdpSocket& sock, std::uint32_t source, bool control, unsigned want,
                                   FrameSink& sink) {
  want = std::clamp(want, 1u, recv_batch);
  auto& io = m_io[control ? 1 : 0];
  unsigned ready = 0;
  for (; ready < want; ++ready) {
    io.bufs[ready] = m_pool->acquire();
    if (io.bufs[ready] == nullptr) break;
    io.iov[ready] = {io.bufs[ready]->data(), m_pool->buffer_bytes()};
    io.msgs[ready].msg_hdr = {};
    io.msgs[ready].msg_hdr.msg_name = &io.from[ready];
    io.msgs[ready].msg_hdr.msg_namelen = sizeof(sockaddr_in);
    io.msgs[ready].msg_hdr.msg_iov = &io.iov[ready];
    io.msgs[ready].msg_hdr.msg_iovlen = 1;
  }
  const int got = ready == 0 ? 0 : sock.recv_batch(io.msgs, ready);
  if (got > 0) m_now = clock::now();
  const auto now_s = got > 0 && m_verifier.keyed() ? unix_seconds() : 0;
  auto& replay = m_replay[control ? m_groups.size() : source];
  for (int i = 0; i < got; ++i) {
    if ((io.msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
      // Larger than our mtu allows: the sender's mtu is above ours.
      sink.on_bad_frame(source, Errc::too_large, io.msgs[i].msg_len);
      continue;
    }
    // Before anything reads it: the MAC, the scope and the replay window.
    const std::span<const std::byte> wire(io.bufs[i]->data(), io.msgs[i].msg_len);
    std::span<const std::byte> body;
    const auto verdict = m_verifier.check(wire, control ? scope_unicast : scope_group, replay, now_s, body);
    if (verdict != AuthVerdict::ok) {
      sink.on_auth_rejected(source, wire.size(),
                            m_verifier.keyed() ? to_string(verdict) : "authenticated, and this endpoint has no auth_key_file");
      continue;
    }
    inject(io.bufs[i], body.size(), io.from[i], source, control, sink);
  }
  for (unsigned i = 0; i < ready; ++i) release(io.bufs[i]);  // frames keep their own references
  return got < 0 ? 0 : static_cast<std::size_t>(got);
}

void UdpSubscriber::drain_control(FrameSink& sink) {
  if (m_in_control) return;  // re-entered through a datagram processed from in here
  m_in_control = true;
  while (receive(m_control, 0, true, 8, sink) == 8) {
  }
  m_in_control = false;
}

std::size_t UdpSubscriber::deliver_ready(FrameSink& sink, std::size_t budget) {
  std::size_t n = 0;
  for (auto& r : m_remotes) {
    if (n >= budget) break;
    n += r.stream->deliver(sink, budget - n);
    if ((m_durable || m_group) && (r.stream->received_seq() >= r.status_received + status_step_messages ||
                                   r.stream->stored_bytes() >= r.status_bytes + status_step_bytes)) {
      r.status_now = true;
      m_timers_due = true;
    }
  }
  return n;
}

std::size_t UdpSubscriber::drain(FrameSink& sink, std::size_t max) {
  std::size_t n = deliver_ready(sink, max);
  // Control is looked at every few calls (an empty read is a system call on the
  // latency path); a WELCOME that must precede data is fetched when that data comes.
  if (m_history_flowing || m_group || ++m_control_countdown >= control_every) {
    // (While history comes by unicast, and always for a group member, the control socket
    // is the data path: read it every time.)
    m_control_countdown = 0;
    m_history_flowing = false;
    drain_control(sink);
  }
  const auto groups = static_cast<std::uint32_t>(m_groups.size());
  bool arrived = false;
  // The core takes one message alone (max 1), runs the handler, then drains again. When
  // the first read already found the socket empty, the second would only repeat that
  // system call on the latency path: it is skipped, once (the next call reads).
  const bool skip = m_just_emptied && max > 1;
  m_just_emptied = false;
  for (std::uint32_t k = 0; k < groups && n < max && !skip; ++k) {
    const auto g = (m_next_group + k) % groups;
    for (;;) {
      // At least 2: a short read then proves the socket was emptied.
      const auto want = static_cast<unsigned>(std::clamp<std::size_t>(max - n, 2, recv_batch));
      const auto got = receive(m_groups[g].sock, g, false, want, sink);
      arrived = arrived || got > 0;
      n += deliver_ready(sink, max - n);
      if (max == 1 && groups == 1) m_just_emptied = got < want;
      if (got < want || n >= max) break;
    }
  }
  if (groups > 1) m_next_group = (m_next_group + 1) % groups;
  if (!arrived && n < max) {
    // Nothing more came: a datagram the fault injector held back goes now, so the
    // reordering never turns into a stall.
    for (auto& h : m_held) {
      if (h.buffer == nullptr) continue;
      Held held = h;
      h.buffer = nullptr;
      process(held.buffer, held.length, held.from, held.source, held.control, sink);
      release(held.buffer);
    }
    n += deliver_ready(sink, max - n);
  }
  if (m_timers_due) timers(clock::now());
  return n;
}

void UdpSubscriber::send_status(Remote& r, clock::time_point now) {
  const auto& s = *r.stream;
  const bool bp = m_config.policy.kind == PolicyKind::backpressure;
  std::uint8_t flags = 0;
  if (m_groups[s.source()].options.reliable) flags |= flag_reliable;
  if (s.welcomed()) flags |= flag_welcomed;
  if (s.bye_seen()) flags |= flag_bye_seen;
  if (!s.welcomed() && s.first_heard() > 0) flags |= flag_heard;
  std::array<std::byte, max_control_bytes> buf;
  const DurableRequest request{
      .kind = static_cast<std::uint8_t>(m_config.durability.kind),
      .from = static_cast<std::uint8_t>(m_config.from),
      .history = static_cast<std::uint32_t>(std::min<std::size_t>(m_config.durability.history, UINT32_MAX)),
      .ack_seq = r.ack_seq,
      .name = m_config.durable_name};
  const auto n = encode_status(buf, s.id(), flags,
                               {.subscription_id = m_config.subscription_id,
                                .received_seq = s.received_seq(),
                                .consumed_seq = bp ? s.consumed_seq() : s.received_seq(),
                                .window = bp ? static_cast<std::uint32_t>(m_config.policy.capacity) : 0,
                                .policy = static_cast<std::uint8_t>(m_config.policy.kind),
                                .prefix = m_config.prefix,
                                .group = m_config.group},
                               m_durable ? &request : nullptr);
  if (m_control.send_to(std::span(buf).first(n), s.address())) r.status_now = false;
  r.status_received = s.received_seq();
  r.status_bytes = s.stored_bytes();
  r.next_status = now + (r.rejected ? reject_retry : s.welcomed() ? status_every : join_retry);
}

void UdpSubscriber::timers(clock::time_point now) {
  m_timers_due = false;
  for (auto& r : m_remotes) {
    auto& s = *r.stream;
    if (s.filtered()) continue;
    if (r.status_now || now >= r.next_status) send_status(r, now);
    Nak nak;
    nak.subscription_id = m_config.subscription_id;
    if (s.take_nak(now, nak, jitter())) {
      std::array<std::byte, 32 + 24 * max_nak_ranges> buf;
      const auto n = encode_nak(buf, s.id(), nak);
      m_control.send_to(std::span(buf).first(n), s.address());
    }
    s.expire(now, vanished_after);
    if (s.gap_pending() || r.status_now) m_timers_due = true;
  }
  // Forget publishers that said goodbye (and were told we saw it) or vanished.
  std::erase_if(m_remotes, [&](const Remote& r) {
    const auto silent = now - r.stream->last_heard();
    return (r.stream->finished() && !r.status_now && silent > forget_after) || silent > vanished_after * 10;
  });
  m_last_remote = 0;
}

void UdpSubscriber::wait(std::chrono::nanoseconds timeout) {
  for (const auto& r : m_remotes) {
    if (r.stream->ready()) return;
  }
  if (m_held[0].buffer != nullptr || m_held[1].buffer != nullptr) return;
  // Wake for the next NAK or STATUS that falls due.
  const auto now = clock::now();
  auto until = now + timeout;
  for (const auto& r : m_remotes) {
    until = std::min({until, r.next_status, r.stream->next_nak()});
  }
  wait_readable(m_fds, std::max<clock::duration>(until - now, clock::duration::zero()));
  m_timers_due = true;
}

bool UdpSubscriber::ack(std::uint32_t, std::uint64_t publisher_id, std::uint64_t seq) {
  Remote* r = find(publisher_id);
  if (r == nullptr) return true;  // it left; the next instance is told on its WELCOME
  // A group member acks the last message it handled, which may be lower than before.
  r->ack_seq = m_group ? seq : std::max(r->ack_seq, seq);
  send_status(*r, clock::now());  // the core calls this every so many messages, not per message
  return true;
}

bool UdpSubscriber::consumed(std::uint32_t, std::uint64_t publisher_id, std::uint32_t n) {
  Remote* r = find(publisher_id);
  if (r == nullptr) return true;  // it left: nobody waits for this credit
  r->stream->consumed(n);
  send_status(*r, clock::now());
  return true;
}

void UdpSubscriber::service(clock::time_point now) {
  m_now = now;
  m_control_countdown = control_every;  // housekeeping time: read control on the next drain
  timers(now);
}

}  // namespace rill::detail::udp
