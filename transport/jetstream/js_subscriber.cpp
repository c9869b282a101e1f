#include "js_subscriber.hpp"

#include <algorithm>
#include <thread>

#include "base/logging.hpp"

namespace rill::detail::js {

namespace {

using clock = std::chrono::steady_clock;

// A Frame holds the client's message; the handler reads the body where it landed.
const FrameOps msg_ops{
    .release = [](void* storage) noexcept { natsMsg_Destroy(*static_cast<natsMsg**>(storage)); },
    .move = nullptr,  // a pointer: relocatable by memcpy
    .bytes =
        [](const void* storage) noexcept {
          natsMsg* m = *static_cast<natsMsg* const*>(storage);
          return std::span<const std::byte>(reinterpret_cast<const std::byte*>(natsMsg_GetData(m)),
                                            static_cast<std::size_t>(natsMsg_GetDataLength(m)));
        },
};

// Messages held back per publisher at most; past it the oldest gap is given up.
constexpr std::size_t max_held = 1u << 16;

// JetStream consumer names may not hold '.', which rill's durable names may.
std::string consumer_name(std::string name) {
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

}  // namespace

JsSubscriber::JsSubscriber(JsOptions options, const SubscriberConfig& config)
    : m_options(std::move(options)), m_config(config) {}

Result<std::unique_ptr<SubscriberTransport>> JsSubscriber::create(std::span<const Endpoint> eps,
                                                                  const SubscriberConfig& config) {
  if (eps.size() != 1) {
    return fail(Errc::invalid_argument,
                "a jetstream subscription reads one stream: give one jetstream:// endpoint "
                "(list the cluster's servers inside it, comma-separated)");
  }
  if (config.durability.kind == DurabilityKind::transient_local) {
    return fail(Errc::unsupported,
                "jetstream keeps the whole stream: subscribe with a durable name and --from "
                "start instead of transient_local");
  }
  auto options = parse_options(eps.front());
  if (!options) return std::unexpected(options.error());
  std::unique_ptr<JsSubscriber> s(new JsSubscriber(std::move(*options), config));
  auto conn = JsConnection::connect(s->m_options);
  if (!conn) return std::unexpected(conn.error());
  s->m_conn = std::move(*conn);
  if (auto ok = s->m_conn->ensure_stream(s->m_options); !ok) return std::unexpected(ok.error());
  if (auto ok = s->subscribe(); !ok) return std::unexpected(ok.error());
  return std::unique_ptr<SubscriberTransport>(std::move(s));
}

Result<void> JsSubscriber::subscribe() {
  const auto filter = prefix_filter(m_options, m_config.prefix);
  m_group = !m_config.group.empty();
  m_acks = !m_config.durable_name.empty() || m_group;
  if (m_config.policy.kind == PolicyKind::backpressure) m_window = m_config.policy.capacity;
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = m_options.stream.c_str();
  std::string durable;
  std::string deliver;
  jsErrCode code = jsErrCode(0);
  natsStatus s = NATS_OK;
  if (!m_acks) {
    // Live messages only; nats.c re-creates an ordered consumer from the last stream
    // sequence it saw when a node is lost, so nothing is skipped or repeated.
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverNew;
  } else {
    durable = consumer_name(m_group ? m_config.group : m_config.durable_name);
    if (!m_group) {
      // Asked before binding: what a previous run left unacknowledged (a new consumer has none).
      jsConsumerInfo* ci = nullptr;
      if (js_GetConsumerInfo(&ci, m_conn->js(), m_options.stream.c_str(), durable.c_str(), nullptr, nullptr) ==
          NATS_OK) {
        m_startup_redeliveries = ci->NumAckPending;
        jsConsumerInfo_Destroy(ci);
      }
      if (m_startup_redeliveries > 0) {
        m_startup_until = clock::now() + std::chrono::milliseconds(m_options.ack_wait_ms + 1000);
        log().info("jetstream: consumer {} has {} unacknowledged messages; holding newer ones until they are back",
                   durable, m_startup_redeliveries);
      }
    }
    // Created here, not by nats.c: a consumer the library creates is deleted when its
    // subscription ends, and a durable one (or a group's) must outlive every member.
    deliver = "_rill_deliver." + m_options.stream + "." + durable;
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable.c_str();
    cc.DeliverSubject = deliver.c_str();
    cc.FilterSubject = filter.c_str();
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = m_options.ack_wait_ms * 1'000'000;
    // rill retries and dead-letters in the handler's process before it acknowledges, so
    // the stream redelivers only what a lost member never acknowledged: no limit here.
    cc.MaxDeliver = -1;
    cc.MaxAckPending = static_cast<std::int64_t>(
        m_window != static_cast<std::size_t>(-1) ? m_window : std::max<std::size_t>(m_options.window, 1024));
    // A new consumer starts at the stream's first message unless asked for the end; an
    // existing one resumes after its last acknowledged message, whatever is asked now.
    cc.DeliverPolicy = m_config.from == StartFrom::end ? js_DeliverNew : js_DeliverAll;
    if (m_group) cc.DeliverGroup = durable.c_str();
    jsConsumerInfo* ci = nullptr;
    s = js_AddConsumer(&ci, m_conn->js(), m_options.stream.c_str(), &cc, nullptr, &code);
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK && code != JSConsumerNameExistErr && code != JSConsumerExistingActiveErr) {
      return std::unexpected(
          nats_error(Errc::io_error, "jetstream: cannot create consumer '" + durable + "'", s, code));
    }
    so.Consumer = durable.c_str();
    so.ManualAck = true;
    if (m_group) so.Queue = durable.c_str();
  }
  code = jsErrCode(0);
  s = js_SubscribeSync(&m_sub, m_conn->js(), filter.c_str(), nullptr, &so, &code);
  // Members starting together race to create the shared consumer; the losers find it
  // created on a second look.
  // (A 3-replica consumer is created through the cluster's Raft groups: up to seconds.)
  for (int again = 0; s != NATS_OK && m_acks && again < 20; ++again) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + 25 * again));
    code = jsErrCode(0);
    s = js_SubscribeSync(&m_sub, m_conn->js(), filter.c_str(), nullptr, &so, &code);
  }
  if (s != NATS_OK) {
    return std::unexpected(nats_error(
        Errc::io_error,
        "jetstream: cannot subscribe to " + filter + (durable.empty() ? "" : " as consumer '" + durable + "'"), s,
        code));
  }
  // The stream paces a durable consumer by MaxAckPending; an ordered one by flow control.
  // The client queue may hold the rest: nothing is dropped there.
  natsSubscription_SetPendingLimits(m_sub, -1, -1);
  return {};
}

JsSubscriber::~JsSubscriber() {
  for (auto* m : m_ready) natsMsg_Destroy(m);
  for (auto& o : m_orders) {
    for (auto& [seq, h] : o.held) natsMsg_Destroy(h.msg);
  }
  // Taken but not handled: handed back at once (-NAK) rather than after ack_wait, so the
  // next run (or another group member) gets them without waiting.
  for (const auto& p : m_pending) {
    if (!p.done && !p.reply.empty()) natsConnection_PublishString(m_conn->nc(), p.reply.c_str(), "-NAK");
  }
  if (m_sub != nullptr) {
    // A durable consumer (created by us, not by nats.c) stays on the server for the next
    // run; only our interest goes. What we took and did not acknowledge is redelivered.
    // An ordered consumer (nats.c's own) is deleted with it.
    natsSubscription_Unsubscribe(m_sub);
    natsSubscription_Destroy(m_sub);
  }
}

JsSubscriber::Order& JsSubscriber::order(std::uint64_t publisher_id) {
  for (auto& o : m_orders) {
    if (o.publisher_id == publisher_id) return o;
  }
  if (m_orders.size() >= 4096) m_orders.erase(m_orders.begin());  // bounded like the core's table
  m_orders.push_back(Order{.publisher_id = publisher_id, .next = 0, .acked = 0, .held = {}});
  return m_orders.back();
}

void JsSubscriber::send_ack(const std::string& reply) {
  if (reply.empty()) return;
  natsConnection_PublishString(m_conn->nc(), reply.c_str(), "+ACK");
}

void JsSubscriber::release_in_order(Order& o) {
  while (!o.held.empty() && o.held.begin()->first <= o.next) {
    auto node = o.held.extract(o.held.begin());
    m_ready.push_back(node.mapped().msg);
    if (node.key() == o.next) ++o.next;
  }
}

void JsSubscriber::intake(natsMsg* msg) {
  const char* id_text = nullptr;
  std::uint64_t pub = 0;
  std::uint64_t seq = 0;
  const bool sequenced = natsMsgHeader_Get(msg, "Nats-Msg-Id", &id_text) == NATS_OK && id_text != nullptr &&
                         parse_msg_id(id_text, pub, seq);
  const char* reply = natsMsg_GetReply(msg);
  if (!subject_topic(m_options, natsMsg_GetSubject(msg)).starts_with(m_config.prefix)) {
    // Inside the consumer's filter, outside the prefix: not ours, and never to come back.
    ++m_foreign;
    if (m_acks && reply != nullptr) send_ack(reply);
    natsMsg_Destroy(msg);
    return;
  }
  if (!sequenced || m_group) {
    // Not from a rill publisher (the core counts it malformed), or a group member's share.
    if (m_acks && sequenced) m_pending.push_back({.publisher_id = pub, .seq = seq, .reply = reply ? reply : ""});
    if (m_acks && !sequenced && reply != nullptr) send_ack(reply);
    m_ready.push_back(msg);
    return;
  }
  auto& o = order(pub);
  if (m_startup_redeliveries > 0) {
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
      // The last one back ends the hold at once (m_startup_until is moved to now).
      if (meta->NumDelivered > 1 && --m_startup_redeliveries == 0) {
        m_startup_redeliveries = 1;
        m_startup_until = clock::now();
      }
      jsMsgMetaData_Destroy(meta);
    }
  }
  if (m_acks) {
    if (seq <= o.acked) {
      // Handled and acknowledged before (our ack was lost, or came late): the stream
      // will stop once told again; the core drops it as a duplicate.
      if (reply != nullptr) send_ack(reply);
    } else {
      m_pending.push_back({.publisher_id = pub, .seq = seq, .reply = reply ? reply : ""});
    }
  }
  if (m_startup_redeliveries > 0) {
    if (in_startup(clock::now())) {
      auto [it, fresh] = o.held.try_emplace(seq, Held{.msg = msg, .since = clock::now()});
      if (!fresh) natsMsg_Destroy(msg);
      return;
    }
    end_startup();  // then this one takes its place in order below
  }
  if (o.next == 0) o.next = seq;
  if (seq < o.next) {
    m_ready.push_back(msg);  // a repeat (or a late straggler): the core sorts it out
    return;
  }
  if (seq > o.next) {
    auto [it, fresh] = o.held.try_emplace(seq, Held{.msg = msg, .since = clock::now()});
    if (!fresh) natsMsg_Destroy(msg);  // the same message twice while held
    if (o.held.size() > max_held) {
      o.next = o.held.begin()->first;
      release_in_order(o);
    }
    return;
  }
  m_ready.push_back(msg);
  ++o.next;
  release_in_order(o);
}

void JsSubscriber::end_startup() {
  m_startup_redeliveries = 0;
  for (auto& o : m_orders) {
    if (o.held.empty()) continue;
    if (o.next == 0 || o.held.begin()->first < o.next) o.next = o.held.begin()->first;
    release_in_order(o);
  }
}

void JsSubscriber::release_overdue(clock::time_point now) {
  if (m_startup_redeliveries > 0) {
    if (in_startup(now)) return;
    end_startup();
  }
  const auto patience = std::chrono::milliseconds(m_options.reorder_ms);
  for (auto& o : m_orders) {
    while (!o.held.empty() && now - o.held.begin()->second.since >= patience) {
      // Its predecessors are not coming (a publisher died with them unconfirmed): the
      // core reports them as a gap when this one is handed on.
      log().warn("jetstream: publisher {:016x} seq {} to {} never arrived; going on at {}", o.publisher_id, o.next,
                 o.held.begin()->first - 1, o.held.begin()->first);
      o.next = o.held.begin()->first;
      release_in_order(o);
    }
  }
}

std::size_t JsSubscriber::drain(FrameSink& sink, std::size_t max) {
  natsMsg* msg = nullptr;
  // Taken from the client up to what may be handed on now (the rest waits there).
  while (m_ready.size() < max && natsSubscription_NextMsg(&msg, m_sub, 0) == NATS_OK) intake(msg);
  bool any_held = false;
  for (const auto& o : m_orders) any_held |= !o.held.empty();
  if (any_held) release_overdue(clock::now());
  std::size_t n = 0;
  while (n < max && !m_ready.empty() && m_in_flight < m_window) {
    Frame frame(&msg_ops, 0);
    *static_cast<natsMsg**>(frame.storage()) = m_ready.front();
    m_ready.pop_front();
    if (m_window != static_cast<std::size_t>(-1)) ++m_in_flight;
    sink.on_data(std::move(frame));
    ++n;
  }
  return n;
}

void JsSubscriber::wait(std::chrono::nanoseconds timeout) {
  if (!m_ready.empty() && m_in_flight < m_window) return;
  const auto ms = std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count());
  natsMsg* msg = nullptr;
  if (natsSubscription_NextMsg(&msg, m_sub, ms) == NATS_OK) intake(msg);
}

bool JsSubscriber::consumed(std::uint32_t, std::uint64_t, std::uint32_t n) {
  m_in_flight -= std::min<std::size_t>(m_in_flight, n);
  return true;
}

bool JsSubscriber::ack(std::uint32_t, std::uint64_t publisher_id, std::uint64_t seq) {
  if (!m_acks) return true;
  // Everything of this publisher that arrived up to the acknowledged message was handled
  // (the core hands messages on in arrival order); a group member's acknowledged sequence
  // may be below earlier ones (a departed member's message), so arrival order decides.
  std::size_t last = m_pending.size();
  for (std::size_t i = m_pending.size(); i-- > 0;) {
    if (!m_pending[i].done && m_pending[i].publisher_id == publisher_id && m_pending[i].seq == seq) {
      last = i;
      break;
    }
  }
  for (std::size_t i = 0; i < m_pending.size(); ++i) {
    auto& p = m_pending[i];
    if (p.done || p.publisher_id != publisher_id) continue;
    if (last < m_pending.size() ? i <= last : p.seq <= seq) {
      send_ack(p.reply);
      p.done = true;
    }
  }
  while (!m_pending.empty() && m_pending.front().done) m_pending.pop_front();
  if (!m_group) {
    auto& o = order(publisher_id);
    o.acked = std::max(o.acked, seq);
  }
  return true;
}

void JsSubscriber::service(clock::time_point) {
  // Reconnects and consumer re-creation run inside nats.c; nothing is due here.
}

}  // namespace rill::detail::js
