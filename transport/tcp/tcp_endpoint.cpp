#include "tcp_endpoint.hpp"

#include <algorithm>
#include <random>
#include <thread>

#include <zmq.h>

#include "base/logging.hpp"
#include "transport/node_core.hpp"
#include "tcp_options.hpp"
#include "tcp_publisher.hpp"

namespace rill::detail::tcp {

namespace {

using clock = std::chrono::steady_clock;

// How long open() retries a bind that finds the port in use.
constexpr auto rebind_wait = std::chrono::milliseconds(1000);
// The helper reads the socket when nobody has for this long.
constexpr auto helper_period = std::chrono::milliseconds(5);

std::string_view as_view(const zmq_msg_t& m) {
  return {static_cast<const char*>(zmq_msg_data(const_cast<zmq_msg_t*>(&m))), zmq_msg_size(const_cast<zmq_msg_t*>(&m))};
}

}  // namespace

Subscribe TcpSubscription::request() const noexcept {
  return {.subscription_id = subscription_id,
          .policy = static_cast<std::uint8_t>(policy),
          .durability = durability,
          .window = window,
          .from = from,
          .history = history,
          .prefix = prefix,
          .durable_name = durable_name,
          .group = group};
}

Result<std::shared_ptr<TcpEndpoint>> TcpEndpoint::open(NodeCore& node, const Endpoint& ep) {
  const std::string addr = "tcp://" + ep.host + ":" + std::to_string(ep.port);
  auto sec = parse_security(ep, Side::publisher);
  if (!sec) return std::unexpected(sec.error());
  // Started before the endpoint binds (and before the registry lock is taken for it): a
  // CURVE handshake that found no ZAP handler would be let in.
  std::shared_ptr<ZapHandler> zap;
  if (sec->curve()) {
    auto got = ZapHandler::get(node);
    if (!got) return std::unexpected(got.error());
    zap = std::move(*got);
  }
  auto opened = node.shared_endpoint<TcpEndpoint>(addr, [&]() -> Result<std::shared_ptr<TcpEndpoint>> {
    std::shared_ptr<ZapDomain> domain;
    if (zap) {
      auto added = zap->add(addr, sec->allow_file);
      if (!added) return fail(Errc::invalid_argument, "tcp endpoint '" + ep.uri + "': " + added.error().detail, added.error().sys);
      domain = std::move(*added);
    }
    try {
      zmq::socket_t sock(node.zmq(), zmq::socket_type::router);
      sock.set(zmq::sockopt::router_mandatory, 1);  // a full or gone peer is an error we count, not a silent drop
      sock.set(zmq::sockopt::sndhwm, pipe_high_water);
      sock.set(zmq::sockopt::rcvhwm, pipe_high_water);
      sock.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(1) << 20);  // control frames are tiny
      sock.set(zmq::sockopt::linger, linger_ms);
      set_keepalive(sock);
      if (sec->curve()) make_curve_server(sock, *sec, addr);
      // An endpoint that just closed (a restart in the same process) still holds the port
      // until libzmq's I/O thread has closed its listener: retry briefly.
      const auto deadline = clock::now() + rebind_wait;
      while (zmq_bind(sock.handle(), addr.c_str()) != 0) {
        if (zmq_errno() != EADDRINUSE || clock::now() >= deadline) throw zmq::error_t();
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      std::shared_ptr<TcpEndpoint> made(new TcpEndpoint(std::move(sock), addr, sec->identity()));
      made->m_zap = zap;
      made->m_zap_domain = std::move(domain);
      return made;
    } catch (const zmq::error_t& e) {
      if (zap) zap->remove(addr, domain);
      const auto code = e.num() == EADDRINUSE ? Errc::address_in_use : Errc::io_error;
      return fail(code, "cannot bind " + ep.uri, e.num());
    }
  });
  if (opened && (*opened)->m_security != sec->identity()) {
    // One socket carries every topic bound here: it has one key and one allow list.
    return fail(Errc::invalid_argument, "tcp endpoint '" + ep.uri + "': " + addr +
                                            " is bound already with other curve_key/curve_allow options (every topic "
                                            "on one endpoint shares its security settings)");
  }
  return opened;
}

TcpEndpoint::TcpEndpoint(zmq::socket_t sock, std::string address, std::string security)
    : m_sock(std::move(sock)),
      m_address(std::move(address)),
      m_instance(new_endpoint_instance()),
      m_security(std::move(security)) {
  log().info("endpoint {} bound (instance {:016x})", m_address, m_instance);
  m_helper = std::thread([this] { helper(); });
}

TcpEndpoint::~TcpEndpoint() {
  {
    std::lock_guard lock(m_helper_mutex);
    m_stop = true;
  }
  m_helper_cv.notify_one();
  m_helper.join();
  if (m_zap) m_zap->remove(m_address, m_zap_domain);
}

void TcpEndpoint::helper() {
  std::unique_lock wait_lock(m_helper_mutex);
  while (!m_helper_cv.wait_for(wait_lock, helper_period, [&] { return m_stop; })) {
    // Never waits for a publisher: one that holds the lock is reading the socket itself.
    if (!mutex.try_lock()) continue;
    if (clock::now() - m_last_drain >= helper_period) drain();
    mutex.unlock();
  }
}

std::size_t TcpEndpoint::subscriptions() {
  std::lock_guard lock(mutex);
  drain();
  return m_subs.size();
}

void TcpEndpoint::attach(TcpPublisher& pub) {
  m_pubs.push_back(&pub);
  m_by_id[pub.id()] = &pub;
}

void TcpEndpoint::detach(TcpPublisher& pub) {
  std::erase(m_pubs, &pub);
  m_by_id.erase(pub.id());
}

bool TcpEndpoint::send_control(const std::string& routing_id, std::span<const std::byte> frame) {
  if (zmq_send(m_sock.handle(), routing_id.data(), routing_id.size(), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) return false;
  return zmq_send(m_sock.handle(), frame.data(), frame.size(), ZMQ_DONTWAIT) >= 0;
}

std::shared_ptr<TcpSubscription>* TcpEndpoint::find(std::string_view routing_id) {
  for (auto& s : m_subs) {
    if (s->routing_id == routing_id) return &s;
  }
  return nullptr;
}

void TcpEndpoint::post(TcpPublisher& pub, TcpEvent event) {
  if (pub.acts_at_once()) {
    pub.act(event);
  } else {
    pub.post(std::move(event));
  }
}

void TcpEndpoint::subscribe(std::string_view routing_id, const Subscribe& s) {
  const auto now = clock::now();
  if (auto* known = find(routing_id)) {
    if ((*known)->subscription_id == s.subscription_id) {
      (*known)->last_seen = now;  // the keepalive
      return;
    }
    (*known)->dead = true;  // the connection re-subscribed as a new subscription
    std::erase(m_subs, *known);
  }
  auto sub = std::make_shared<TcpSubscription>();
  sub->routing_id = std::string(routing_id);
  sub->subscription_id = s.subscription_id;
  sub->policy = static_cast<PolicyKind>(s.policy);
  sub->durability = s.durability;
  sub->from = s.from;
  sub->history = s.history;
  sub->window = std::min<std::uint32_t>(s.window, pipe_high_water / 2);
  sub->credit = sub->window;
  sub->prefix = std::string(s.prefix);
  sub->durable_name = std::string(s.durable_name);
  sub->group = std::string(s.group);
  sub->last_seen = now;
  m_subs.push_back(sub);
  // Filtered here: a publisher whose topic does not match never hears of it.
  for (auto* pub : m_pubs) {
    if (std::string_view(pub->topic()).starts_with(sub->prefix)) post(*pub, {TcpEvent::Kind::subscribe, sub});
  }
}

void TcpEndpoint::handle(std::string_view routing_id, std::span<const std::byte> frame) {
  const auto control = decode_control(frame);
  if (!control) {
    ++m_bad_control;
    if (!m_bad_control_logged) {
      m_bad_control_logged = true;
      log().warn("endpoint {}: malformed control frame ({} bytes) from a peer; counting further ones silently",
                 m_address, frame.size());
    }
    return;
  }
  auto* known = find(routing_id);
  TcpSubscription* sub = known != nullptr ? known->get() : nullptr;
  const auto ours = [&](std::uint64_t subscription_id) { return sub != nullptr && sub->subscription_id == subscription_id; };
  switch (control->type) {
    case ControlType::subscribe:
      subscribe(routing_id, control->subscribe);
      break;
    case ControlType::credit:
      if (ours(control->credit.subscription_id)) {
        sub->credit = std::min<std::int64_t>(sub->credit + control->credit.credits, sub->window);
        sub->last_seen = clock::now();
      }
      break;
    case ControlType::ack:
    case ControlType::bye_seen: {
      const auto& a = control->ack;
      if (!ours(a.subscription_id)) break;
      sub->last_seen = clock::now();
      const auto pub = m_by_id.find(a.publisher_id);
      if (pub == m_by_id.end()) break;  // a publisher that left already
      const auto kind = control->type == ControlType::ack ? TcpEvent::Kind::ack : TcpEvent::Kind::bye_seen;
      post(*pub->second, {kind, *known, a.seq});
      break;
    }
    case ControlType::unsubscribe:
      if (ours(control->subscribe.subscription_id)) {
        sub->dead = true;
        std::erase(m_subs, *known);
      }
      break;
    default:
      ++m_bad_control;  // publisher-bound frames only; a welcome sent to us is garbage
      break;
  }
}

void TcpEndpoint::drain() {
  zmq_msg_t rid;
  zmq_msg_t body;
  zmq_msg_init(&rid);
  zmq_msg_init(&body);
  while (zmq_msg_recv(&rid, m_sock.handle(), ZMQ_DONTWAIT) >= 0) {
    // A ROUTER always yields the routing id first; the control frame follows.
    if (!zmq_msg_more(&rid) || zmq_msg_recv(&body, m_sock.handle(), ZMQ_DONTWAIT) < 0) {
      ++m_bad_control;
      continue;
    }
    if (zmq_msg_more(&body)) {  // multi-part garbage: swallow the rest
      ++m_bad_control;
      while (zmq_msg_more(&body) && zmq_msg_recv(&body, m_sock.handle(), ZMQ_DONTWAIT) >= 0) {
      }
      continue;
    }
    handle(as_view(rid), {static_cast<const std::byte*>(zmq_msg_data(&body)), zmq_msg_size(&body)});
  }
  zmq_msg_close(&rid);
  zmq_msg_close(&body);
  const auto now = clock::now();
  m_last_drain = now;
  std::erase_if(m_subs, [&](const std::shared_ptr<TcpSubscription>& s) {
    if (now - s->last_seen > std::chrono::milliseconds(peer_timeout_ms)) s->dead = true;
    return s->dead;
  });
}

void TcpEndpoint::wait(std::chrono::milliseconds timeout) {
  zmq_pollitem_t item{m_sock.handle(), 0, ZMQ_POLLIN, 0};
  zmq_poll(&item, 1, std::max<long>(0, static_cast<long>(timeout.count())));
}

}  // namespace rill::detail::tcp
