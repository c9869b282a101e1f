// One bound tcp address shared by every publisher (topic) on it: the ZeroMQ ROUTER, the
// subscriptions that connected, and the publishers' inboxes.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <zmq.hpp>

#include "rill/endpoint.hpp"
#include "rill/error.hpp"
#include "rill/policy.hpp"
#include "transport/transport.hpp"
#include "tcp_security.hpp"
#include "tcp_wire.hpp"
#include "tcp_zap.hpp"

namespace rill::detail {
class NodeCore;
}

namespace rill::detail::tcp {

class TcpPublisher;

/// A subscription connected to the endpoint: what it asked for, its liveness, and its
/// backpressure window, which every publisher on the endpoint shares (a subscriber's
/// queue holds `window` messages whichever topic they come from).
struct TcpSubscription {
  std::string routing_id;
  std::uint64_t subscription_id = 0;
  PolicyKind policy = PolicyKind::drop_oldest;
  std::uint8_t durability = 0;
  std::uint8_t from = 0;
  std::uint32_t history = 0;
  std::uint32_t window = 0;
  std::int64_t credit = 0;  // backpressure only: messages it may still be sent
  std::string prefix;
  std::string durable_name;
  std::string group;
  std::chrono::steady_clock::time_point last_seen;
  bool dead = false;

  /// The request as a SUBSCRIBE carried it (views into this object).
  [[nodiscard]] Subscribe request() const noexcept;
};

/// What the endpoint hands a publisher to act on in its own thread.
struct TcpEvent {
  enum class Kind : std::uint8_t { subscribe, ack, bye_seen } kind{};
  std::shared_ptr<TcpSubscription> sub;
  std::uint64_t seq = 0;  // ack
};

/// Shared by the publishers bound to one address (NodeCore::shared_endpoint). Every member
/// and every call needs `mutex` held: the publishers run on their own threads, and the one
/// that holds the lock reads the socket for all of them. What it reads for a volatile
/// publisher is acted on at once (all that publisher's state lives under the lock); a
/// durable publisher's history is read outside the lock by its own thread, so control
/// frames for it wait in its inbox (its idle helper serves them when it is quiet).
///
/// A helper thread per endpoint reads the socket when no publisher has for a while (5 ms):
/// a quiet endpoint still greets new subscriptions, forgets silent ones and takes credit,
/// with no thread hop on the publish path (the helper only ever try_locks).
class TcpEndpoint final : public EndpointHold {
 public:
  static Result<std::shared_ptr<TcpEndpoint>> open(NodeCore& node, const Endpoint& ep);
  ~TcpEndpoint() override;

  /// EndpointHold: takes the lock itself (the one method that does).
  [[nodiscard]] std::size_t subscriptions() override;

  std::mutex mutex;

  [[nodiscard]] void* socket() noexcept { return m_sock.handle(); }
  [[nodiscard]] std::uint64_t instance() const noexcept { return m_instance; }
  [[nodiscard]] const std::string& address() const noexcept { return m_address; }

  /// Adds a publisher; it greets the live subscriptions itself (attached()).
  void attach(TcpPublisher& pub);
  void detach(TcpPublisher& pub);
  /// More than one publisher is bound here (a waiting one lets go of the lock now and then).
  [[nodiscard]] bool shared() const noexcept { return m_pubs.size() > 1; }
  /// The live subscriptions (for a publisher that just attached).
  [[nodiscard]] const std::vector<std::shared_ptr<TcpSubscription>>& live() const noexcept { return m_subs; }

  /// Reads every control frame that has arrived: keepalives, credit and departures are
  /// settled here; subscriptions, acks and BYE answers go to the inboxes of the publishers
  /// they concern. Expires subscriptions silent for too long.
  void drain();
  /// Waits up to `timeout` for a frame to read (the lock stays held: keep it short).
  void wait(std::chrono::milliseconds timeout);
  bool send_control(const std::string& routing_id, std::span<const std::byte> frame);

  /// Malformed control frames (counted once per endpoint, logged once).
  [[nodiscard]] std::uint64_t bad_control() const noexcept { return m_bad_control; }
  /// CURVE handshakes refused by the allow list (any thread; 0 without curve_key).
  [[nodiscard]] std::uint64_t auth_rejected() const noexcept { return m_zap_domain ? m_zap_domain->rejected.load() : 0; }

 private:
  TcpEndpoint(zmq::socket_t sock, std::string address, std::string security);
  void helper();
  void handle(std::string_view routing_id, std::span<const std::byte> frame);
  void subscribe(std::string_view routing_id, const Subscribe& s);
  void post(TcpPublisher& pub, TcpEvent event);
  std::shared_ptr<TcpSubscription>* find(std::string_view routing_id);

  zmq::socket_t m_sock;
  std::string m_address;
  std::uint64_t m_instance;
  std::string m_security;  // TcpSecurity::identity(): what every publisher here must agree on
  std::shared_ptr<ZapHandler> m_zap;
  std::shared_ptr<ZapDomain> m_zap_domain;
  std::vector<std::shared_ptr<TcpSubscription>> m_subs;
  std::vector<TcpPublisher*> m_pubs;
  std::unordered_map<std::uint64_t, TcpPublisher*> m_by_id;
  std::uint64_t m_bad_control = 0;
  bool m_bad_control_logged = false;
  std::chrono::steady_clock::time_point m_last_drain{};
  // The helper (started last, stopped first).
  std::mutex m_helper_mutex;
  std::condition_variable m_helper_cv;
  bool m_stop = false;
  std::thread m_helper;
};

}  // namespace rill::detail::tcp
