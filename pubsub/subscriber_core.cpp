#include "subscriber_core.hpp"

#include <algorithm>
#include <cstring>
#include <thread>

#include "base/logging.hpp"

namespace rill::detail {

namespace {

using clock = std::chrono::steady_clock;

// Housekeeping (keepalive) is looked at every this many poll calls, or when idle.
constexpr unsigned service_every = 256;
constexpr unsigned idle_service_every = 16;
// A queue being worked through is topped up from the transport at least this often.
constexpr auto drain_interval = std::chrono::microseconds(50);
constexpr unsigned look_every = 8;
// Publisher instances whose sequences are tracked at once.
constexpr std::size_t max_tracked_publishers = 1024;
// Departed publishers remembered (id, last sequence) in case one comes back.
constexpr std::size_t max_departed = 64;

}  // namespace

namespace {

// A backpressure window is granted to each publisher, so the queue must hold one
// full window per connection.
Policy queue_policy(const SubscriberOptions& options) {
  Policy p = options.policy;
  if (p.kind == PolicyKind::backpressure) p.capacity *= std::max<std::size_t>(1, options.endpoints.size());
  return p;
}

}  // namespace

SubscriberCore::SubscriberCore(std::shared_ptr<NodeCore> node, std::unique_ptr<SubscriberTransport> transport,
                               SubscriberOptions options, std::uint64_t id, DurableState durable)
    : m_node(std::move(node)),
      m_transport(std::move(transport)),
      m_options(std::move(options)),
      m_id(id),
      m_queue(queue_policy(m_options)),
      m_sources(m_options.endpoints.size()) {
  // Returning credit in quarters of the window keeps the publisher streaming without
  // a control frame per message.
  if (m_options.policy.kind == PolicyKind::backpressure) {
    m_credit_batch = static_cast<std::uint32_t>(std::max<std::size_t>(1, m_options.policy.capacity / 4));
  }
  // Drop and buffer policies take in everything that has arrived before each delivery,
  // so the backlog sits in the policy queue (which drops the right end) and not in
  // the transport's pipes. The bound only keeps one call from running forever when a
  // publisher outpaces even the draining.
  m_drain_budget = m_options.policy.kind == PolicyKind::backpressure ? m_queue.policy().capacity + 64 : 1u << 18;
  m_direct = m_transport->applies_policy();
  m_trusted = m_transport->trusted();
  m_group = !m_options.group.empty();
  m_publishers.reserve(8);
  m_store = std::move(durable.store);
  m_ledger = std::move(durable.ledger);
  if (m_store) load_state();
}

SubscriberCore::~SubscriberCore() {
  // What the handler finished since the last round is acknowledged on the way out (the
  // transport lingers to let it go); otherwise the publisher would resend it next time.
  if (durable() && m_acks_due) flush_acks();
}

const SubscriberStats& SubscriberCore::stats() noexcept {
  m_stats.dropped = m_queue.discarded() + m_transport->policy_drops();
  m_stats.queue_depth = m_queue.size();
  m_stats.queue_bytes = m_queue.bytes();
  m_stats.queue_high_water_bytes = m_queue.high_water_bytes();
  return m_stats;
}

SubscriberCore::PublisherState& SubscriberCore::publisher(std::uint64_t id, std::uint64_t first_seq) {
  if (m_last_publisher < m_publishers.size() && m_publishers[m_last_publisher].id == id) {
    return m_publishers[m_last_publisher];
  }
  for (std::size_t i = 0; i < m_publishers.size(); ++i) {
    if (m_publishers[i].id == id) {
      m_last_publisher = i;
      return m_publishers[i];
    }
  }
  // Not greeted (a foreign publisher that skips WELCOME): start counting from here.
  forget_oldest_if_full();
  m_publishers.push_back({.id = id, .expected = first_seq, .counted = true});
  if (auto* e = m_store ? m_store->find(id) : nullptr) {
    m_publishers.back().slot = e;
    m_publishers.back().expected = std::max(first_seq, e->delivered + 1);
  }
  ++m_stats.publishers;
  m_last_publisher = m_publishers.size() - 1;
  return m_publishers.back();
}

void SubscriberCore::forget_oldest_if_full() {
  // Publishers killed without a BYE, or a peer inventing ids, must not grow this table
  // (and its linear search) without bound: the longest-known entry goes first.
  if (m_publishers.size() < max_tracked_publishers) return;
  credit(m_publishers.front());  // its window slots go back before it is forgotten
  m_publishers.erase(m_publishers.begin());
  m_last_publisher = 0;
}

void SubscriberCore::report_gap(PublisherState& p, std::uint64_t first, std::uint64_t last) {
  m_stats.gaps += last - first + 1;
  if (m_direct) look_at_policy_state();  // a transport-side overflow shows first as a gap
  if (m_options.on_loss) m_options.on_loss(LossEvent{p.id, first, last});
}

void SubscriberCore::return_window_slot(std::uint32_t source, PublisherState* p) {
  // Every data frame a backpressure publisher sent took a window slot, whatever
  // became of it here; not returning one would shrink its window for good. The slot
  // goes back to the publisher that sent the frame; one whose sender is unknown (it
  // did not verify) to the connection's last greeted publisher.
  if (m_options.policy.kind != PolicyKind::backpressure) return;
  if (p != nullptr) {
    if (++p->pending_credit >= m_credit_batch) credit(*p);
  } else if (++m_sources[source].pending_credit >= m_credit_batch) {
    credit(source);
  }
}

void SubscriberCore::on_data(Frame&& frame) {
  const auto source = frame.source();
  if (m_direct) {  // the transport applied the policy; one frame at a time waits here
    m_direct_frame = std::move(frame);
    return;
  }
  const auto outcome = m_queue.push(std::move(frame));
  if (outcome == PushOutcome::rejected) return_window_slot(source);
  if (outcome != PushOutcome::queued) m_stats.dropped = m_queue.discarded() + m_transport->policy_drops();
  if (m_queue.overflowed()) look_at_policy_state();
}

void SubscriberCore::look_at_policy_state() {
  if ((m_queue.overflowed() || (m_direct && m_transport->policy_overflowed())) && !m_overflow_reported) {
    m_overflow_reported = true;
    m_stats.overflow_events = 1;
    log().warn("subscription {:016x}: buffer policy passed its {} byte limit; now dropping oldest", m_id,
               m_options.policy.capacity);
    if (m_options.on_overflow) m_options.on_overflow(stats());
  }
}

void SubscriberCore::on_reject(std::uint32_t source, std::uint64_t publisher_id, DurabilityKind offered,
                               DurabilityKind requested, std::string_view reason) {
  // The transport asks again now and then (the publisher may be restarted with more
  // durability): a refusal by the same publisher is reported once.
  if (std::find(m_rejected_by.begin(), m_rejected_by.end(), publisher_id) != m_rejected_by.end()) return;
  if (m_rejected_by.size() >= max_tracked_publishers) m_rejected_by.erase(m_rejected_by.begin());
  m_rejected_by.push_back(publisher_id);
  ++m_stats.incompatible;
  // An application that takes the event reports it itself.
  log().log(m_options.on_incompatible ? spdlog::level::info : spdlog::level::err,
            "subscription {:016x}: publisher {:016x} on {} refused it: offers {}, asked for {} ({})", m_id,
            publisher_id, m_options.endpoints[source], to_string(offered), to_string(requested), reason);
  if (m_options.on_incompatible) {
    m_options.on_incompatible(
        IncompatibleEvent{publisher_id, m_options.endpoints[source], offered, requested, std::string(reason)});
  }
}

void SubscriberCore::on_welcome(std::uint32_t source, std::uint64_t publisher_id, std::uint64_t next_seq,
                                std::uint64_t lost, std::uint64_t instance) {
  auto& src = m_sources[source];
  if (instance != 0 && src.instance != 0 && instance != src.instance) {
    // The endpoint behind this connection was bound again (its process restarted): every
    // publisher it now carries is new, and credit owed to the old one is void.
    ++m_stats.publisher_restarts;
    log().info("subscription {:016x}: endpoint {} restarted (instance {:016x} -> {:016x})", m_id,
               m_options.endpoints[source], src.instance, instance);
    src.replaced_by = instance;
    src.pending_credit = 0;
    for (auto& old : m_publishers) {
      if (old.source == source && old.instance == src.instance) old.pending_credit = 0;
    }
  }
  if (instance != 0) src.instance = instance;
  auto* p = find_publisher(publisher_id);
  std::uint64_t reported_to = 0;  // gaps up to here are reported already
  std::uint64_t old_expected = 0;
  if (p == nullptr) {
    forget_oldest_if_full();
    m_publishers.push_back({.id = publisher_id, .expected = next_seq, .instance = instance});
    p = &m_publishers.back();
    if (auto* e = m_store ? m_store->find(publisher_id) : nullptr) {
      // Known from the state file (it left and came back): never hand the handler a
      // sequence it finished before.
      p->slot = e;
      old_expected = e->delivered + 1;
      p->expected = std::max(next_seq, old_expected);
    }
    if (instance != 0 && instance == src.replaced_by) {
      // A publisher of the restarted endpoint published up to next_seq-1 before it learned
      // about us. We were subscribed to the endpoint all along, so what we never saw of
      // that is a gap: all of it for a new publisher, the part after its BYE for one that
      // came back with its id (a persistent publisher continuing its log). (A publisher
      // added later to an endpoint we know greets us before its first message.)
      std::uint64_t from = std::max<std::uint64_t>(1, old_expected);
      const auto before = std::find_if(m_departed.begin(), m_departed.end(),
                                       [&](const Departed& d) { return d.id == publisher_id; });
      if (before != m_departed.end()) from = std::max(from, before->last_seq + 1);
      log().info("subscription {:016x}: publisher {:016x} on {} resumes at seq {}", m_id, publisher_id,
                 m_options.endpoints[source], next_seq);
      if (from < next_seq) report_gap(*p, from, next_seq - 1);
      reported_to = next_seq - 1;
    }
  } else if (m_store) {
    // A durable subscription known from its state file: the publisher starts where it was
    // asked to (the last ack, or --from end on purpose); what it skipped for retention it
    // states in `lost`, below. Sequences up to `expected` were handled already.
    old_expected = p->expected;
    p->expected = std::max(p->expected, next_seq);
  }
  if (!p->counted) {
    p->counted = true;
    ++m_stats.publishers;
    if (m_options.policy.kind == PolicyKind::backpressure && m_transport->window_per_publisher()) {
      // Each publisher may have a whole window in flight to us at once.
      m_queue.raise_capacity(m_options.policy.capacity * std::max(m_options.endpoints.size(), m_publishers.size()));
      m_drain_budget = m_queue.policy().capacity + 64;
    }
  }
  p->source = source;
  p->has_source = true;
  p->instance = instance;
  // Retention deleted these before we could have them: that is how a durable subscriber
  // behind retention learns how much it lost.
  if (lost > 0 && next_seq > lost) {
    const auto first = std::max({next_seq - lost, reported_to + 1, old_expected});
    if (first <= next_seq - 1) report_gap(*p, first, next_seq - 1);
  }
  if (m_store && p->slot != nullptr && p->slot->publisher_id == publisher_id && p->slot->delivered > 0) {
    // A persistent publisher's stored ack may lag what we handled (we died before acking):
    // acknowledge our position once so it catches up.
    p->ack_want = std::max(p->ack_want, p->slot->delivered);
    p->ack_sent = 0;
    m_acks_due = true;
  }
  src.publisher_id = publisher_id;
}

void SubscriberCore::on_bye(std::uint32_t, std::uint64_t publisher_id, std::uint64_t last_seq) {
  for (auto& p : m_publishers) {
    if (p.id == publisher_id) {
      p.left = true;
      p.last_seq = last_seq;
      m_any_left = true;
    }
  }
}

void SubscriberCore::on_lost(std::uint32_t source, std::uint64_t publisher_id, std::uint64_t last_seq) {
  ++m_stats.publishers_lost;
  on_bye(source, publisher_id, last_seq);
}

void SubscriberCore::on_security_error(std::uint32_t source, std::string_view reason) {
  ++m_stats.security_errors;
  // An application that takes the event reports it itself.
  log().log(m_options.on_security_error ? spdlog::level::info : spdlog::level::err,
            "subscription {:016x}: cannot connect securely to {}: {}", m_id, m_options.endpoints[source], reason);
  if (m_options.on_security_error) m_options.on_security_error(SecurityEvent{m_options.endpoints[source], std::string(reason)});
}

void SubscriberCore::on_auth_rejected(std::uint32_t source, std::size_t size, std::string_view why) {
  ++m_stats.auth_rejected;
  if (m_auth_logged) return;
  m_auth_logged = true;
  log().warn("subscription {:016x}: refused a datagram of {} bytes from {} ({}); counting further ones silently", m_id,
             size, m_options.endpoints[source], why);
}

void SubscriberCore::on_bad_frame(std::uint32_t source, Errc code, std::size_t size) {
  if (code == Errc::too_large) {
    ++m_stats.oversize;
    return_window_slot(source);  // it was a data frame, counted against the window
  } else {
    ++m_stats.malformed;
  }
  if (!m_malformed_logged) {
    m_malformed_logged = true;
    log().warn("subscription {:016x}: discarded a {} frame of {} bytes from {}; counting further ones silently", m_id,
               to_string(code), size, m_options.endpoints[source]);
  }
}

std::span<const std::byte> SubscriberCore::aligned(std::span<const std::byte> bytes) {
  // ZeroMQ hands small messages out of its shared receive buffer at any address.
  // FlatBuffers must be read at an aligned address, so those get one copy.
  if (bytes.size() > m_scratch_size) {
    m_scratch_size = std::max<std::size_t>(bytes.size(), 4096);
    m_scratch.reset(new std::byte[m_scratch_size]);
  }
  std::memcpy(m_scratch.get(), bytes.data(), bytes.size());
  ++m_stats.realigned;
  return {m_scratch.get(), bytes.size()};
}

void SubscriberCore::credit(std::uint32_t source) {
  auto& src = m_sources[source];
  // Credit that cannot be queued now stays pending and goes out, summed, next time:
  // losing it would shrink the publisher's window for good.
  if (src.pending_credit > 0 && m_transport->consumed(source, src.publisher_id, src.pending_credit)) {
    src.pending_credit = 0;
  }
}

void SubscriberCore::credit(PublisherState& p) {
  if (p.pending_credit > 0 && p.has_source && m_transport->consumed(p.source, p.id, p.pending_credit)) {
    p.pending_credit = 0;
  }
}

namespace {

// What is still checked when the user trusts the transport's memory: the identifier.
Result<const wire::Envelope*> trusted_envelope(std::span<const std::byte> bytes) {
  const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
  if (bytes.size() < 16 || !flatbuffers::BufferHasIdentifier(data, wire::EnvelopeIdentifier())) {
    return fail(Errc::malformed, "not an envelope");
  }
  return wire::GetEnvelope(data);
}

}  // namespace

std::optional<MessageView> SubscriberCore::accept(Frame& frame) {
  const auto source = frame.source();
  auto bytes = frame.bytes();
  if (reinterpret_cast<std::uintptr_t>(bytes.data()) % envelope_alignment != 0) bytes = aligned(bytes);
  auto env = m_trusted ? trusted_envelope(bytes) : verify_envelope(bytes, m_options.verify);
  if (!env) {
    return_window_slot(source);
    on_bad_frame(source, Errc::malformed, bytes.size());  // counted, not credited twice
    return std::nullopt;
  }
  const MessageView view(*env, bytes);
  if (!view.topic().starts_with(m_options.prefix)) {  // a publisher that ignored our prefix
    return_window_slot(source);
    return std::nullopt;
  }
  auto& p = publisher(view.publisher_id(), view.sequence());
  return_window_slot(source, &p);
  p.source = source;
  p.has_source = true;
  const auto seq = view.sequence();
  if (m_group) {
    // A group member is sent its share of the publisher's sequence, and a departed
    // member's messages out of order: the gaps and repeats of the whole sequence say
    // nothing about it (the publisher accounts for the group). The publisher is still
    // looked up above: its state-file slot and its acks are per publisher.
    p.expected = std::max(p.expected, seq + 1);
    ++m_stats.received;
    return view;
  }
  if (seq < p.expected) {
    ++m_stats.duplicates;
    return std::nullopt;
  }
  if (seq > p.expected) report_gap(p, p.expected, seq - 1);
  p.expected = seq + 1;
  ++m_stats.received;
  return view;
}

void SubscriberCore::deliver(Frame& frame, Subscriber::CheckedHandler handler) {
  // accept() looked the publisher up, which leaves it at m_last_publisher.
  if (auto view = accept(frame)) handle(m_publishers[m_last_publisher], *view, handler);
}

void SubscriberCore::settle_idle() {
  for (std::uint32_t s = 0; s < m_sources.size(); ++s) credit(s);
  if (m_options.policy.kind == PolicyKind::backpressure) {
    for (auto& p : m_publishers) credit(p);
  }
  if (m_acks_due) maybe_flush_acks();
  if (!m_any_left) return;
  m_any_left = false;
  // Everything a departed publisher sent before its BYE has been handled or dropped
  // by now, so whatever is still missing up to its last sequence is a tail gap.
  std::erase_if(m_publishers, [&](PublisherState& p) {
    if (!p.left) return false;
    if (p.expected <= p.last_seq) report_gap(p, p.expected, p.last_seq);
    // Remembered a while: a persistent publisher may come back with its id and go on.
    if (m_departed.size() >= max_departed) m_departed.erase(m_departed.begin());
    m_departed.push_back({p.id, p.last_seq});
    return true;
  });
  m_last_publisher = 0;
}

void SubscriberCore::drain_all() {
  m_transport->drain(*this, m_drain_budget);
  m_last_drain = clock::now();
  m_since_look = 0;
}

std::size_t SubscriberCore::poll(Subscriber::Handler handler, std::size_t limit) {
  auto checked = [&handler](const MessageView& m) -> Result<void> {
    handler(m);
    return {};
  };
  return poll(Subscriber::CheckedHandler(checked), limit);
}

std::size_t SubscriberCore::poll(Subscriber::CheckedHandler handler, std::size_t limit) {
  std::size_t handled = 0;
  for (;;) {
    if (handled >= limit) break;
    if (queue_empty()) {
      // Nothing queued: take the next arrival alone and hand it over at once. Looking
      // further first would find nothing and cost libzmq two system calls, on the
      // latency path; the rest is taken in after the handler ran (below).
      m_transport->drain(*this, 1);
      if (queue_empty()) break;
    } else if (!m_direct && ++m_since_look >= look_every && clock::now() - m_last_drain >= drain_interval) {
      // A queue being worked through is topped up every few deliveries once
      // drain_interval has passed, so its queue, not the socket, absorbs the backlog and
      // the policy drops the right end. (The clock is read every look_every deliveries:
      // per delivery it is a visible share of a fast handler's cost.)
      drain_all();
    }
    Frame frame = next_frame();
    const auto before = m_stats.received;
    deliver(frame, handler);
    handled += m_stats.received - before;
  }
  // Take in what arrived meanwhile (and control traffic, also when limit is 0), so the
  // next delivery's policy decision sees it.
  if (m_direct) {
    if (limit == 0) m_transport->drain(*this, 0);  // greetings and departures only
  } else if (handled > 0 || limit == 0 || !queue_empty()) {
    drain_all();
  }
  if (queue_empty()) {
    settle_idle();
  } else if (m_acks_due) {
    maybe_flush_acks();
  }
  // Keepalives are due every few hundred ms: look at the clock every few empty polls,
  // or now and then while busy. (Not on every empty poll: a spinning caller's loop
  // must stay short, or it notices the next arrival later.)
  const bool due = handled == 0 ? ++m_idle_polls >= idle_service_every : m_service_countdown-- == 0;
  if (due) {
    m_idle_polls = 0;
    m_service_countdown = service_every;
    m_transport->service(clock::now());
    if (m_direct) look_at_policy_state();
  }
  return handled;
}

void SubscriberCore::idle(clock::time_point deadline, unsigned& rounds) {
  const auto now = clock::now();
  if (m_options.idle != IdleStrategy::spin) m_transport->service(now);  // its rounds are slow anyway
  switch (m_options.idle) {
    case IdleStrategy::spin:
      break;
    case IdleStrategy::backoff:
      if (++rounds < 100) break;
      if (rounds < 200) {
        std::this_thread::yield();
      } else {
        const auto nap = std::chrono::microseconds(std::min(1000u, 1u << std::min(10u, (rounds - 200) / 8)));
        std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(nap, deadline - now));
      }
      break;
    case IdleStrategy::spin_block:
      // Spin while the quiet spell is short; rounds counts from the call's start.
      if (rounds == 0) m_spin_until = now + m_options.spin_before_block;
      ++rounds;
      if (now < m_spin_until) break;
      [[fallthrough]];
    case IdleStrategy::block:
      m_transport->wait(std::min<std::chrono::nanoseconds>(deadline - now, std::chrono::milliseconds(100)));
      break;
  }
}

std::size_t SubscriberCore::wait_poll(Subscriber::Handler handler, std::size_t limit,
                                      std::chrono::nanoseconds timeout) {
  auto checked = [&handler](const MessageView& m) -> Result<void> {
    handler(m);
    return {};
  };
  return wait_poll(Subscriber::CheckedHandler(checked), limit, timeout);
}

std::size_t SubscriberCore::wait_poll(Subscriber::CheckedHandler handler, std::size_t limit,
                                      std::chrono::nanoseconds timeout) {
  const auto deadline = clock::now() + timeout;
  unsigned idle_rounds = 0;
  for (;;) {
    if (const auto n = poll(handler, limit); n > 0) return n;
    if (clock::now() >= deadline) return 0;
    idle(deadline, idle_rounds);
  }
}

std::optional<Sample> SubscriberCore::take() {
  for (;;) {
    if (queue_empty()) {
      m_transport->drain(*this, 1);
      if (queue_empty()) {
        poll([](const MessageView&) {}, 0);  // housekeeping, departures' tail gaps
        return std::nullopt;
      }
    }
    Frame frame = next_frame();
    const auto before = frame.bytes();
    auto view = accept(frame);
    if (!view) continue;
    // Durable: a taken message counts as handled (the caller owns it from here), unless
    // handled-ness follows ack().
    auto& p = m_publishers[m_last_publisher];
    if (m_store && !m_options.handled_on_ack) handled(p, &durable_slot(p), view->sequence());
    if (m_ledger) {
      GroupLedger::Claim claim;
      if (!claim_in_group(p, *view, claim)) continue;
      m_ledger->finish(claim);
      handled(p, nullptr, view->sequence());
    }
    Sample out;
    if (view->bytes().data() != before.data()) {
      // Realigned into scratch: the sample needs bytes of its own.
      out.m_copy.reset(new std::byte[view->bytes().size()]);
      out.m_copy_size = view->bytes().size();
      std::memcpy(out.m_copy.get(), view->bytes().data(), out.m_copy_size);
    } else {
      static_assert(sizeof(Frame) <= sizeof(out.m_frame) && alignof(Frame) <= 16);
      new (out.m_frame) Frame(std::move(frame));
      out.m_has_frame = true;
    }
    return out;
  }
}

std::optional<Sample> SubscriberCore::wait_take(std::chrono::nanoseconds timeout) {
  const auto deadline = clock::now() + timeout;
  unsigned idle_rounds = 0;
  for (;;) {
    if (auto s = take()) return s;
    if (clock::now() >= deadline) return std::nullopt;
    idle(deadline, idle_rounds);
  }
}

}  // namespace rill::detail

namespace rill {

using detail::Frame;

Sample::Sample(Sample&& other) noexcept {
  *this = std::move(other);
}

Sample& Sample::operator=(Sample&& other) noexcept {
  if (this != &other) {
    reset();
    if (other.m_has_frame) {
      new (m_frame) Frame(std::move(*std::launder(reinterpret_cast<Frame*>(other.m_frame))));
      m_has_frame = true;
      other.reset();
    }
    m_copy = std::move(other.m_copy);
    m_copy_size = std::exchange(other.m_copy_size, 0);
  }
  return *this;
}

Sample::~Sample() {
  reset();
}

void Sample::reset() noexcept {
  if (m_has_frame) std::launder(reinterpret_cast<Frame*>(m_frame))->~Frame();
  m_has_frame = false;
}

std::span<const std::byte> Sample::bytes() const noexcept {
  if (m_has_frame) return std::launder(reinterpret_cast<const Frame*>(m_frame))->bytes();
  return {m_copy.get(), m_copy_size};
}

MessageView Sample::view() const noexcept {
  const auto b = bytes();
  return MessageView(wire::GetEnvelope(b.data()), b);
}

}  // namespace rill
