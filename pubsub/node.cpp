#include "rill/node.hpp"
#include "rill/transports.hpp"

#include <pthread.h>
#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "transport/transport.hpp"
#include "policies/durability/admission.hpp"
#include "policies/durability/history.hpp"
#include "base/logging.hpp"
#include "transport/node_core.hpp"
#include "subscriber_core.hpp"

namespace rill {

namespace {

// Publisher and subscription ids: random, never 0 (0 means "none" on the wire).
std::uint64_t random_id() {
  std::uint64_t id = 0;
  while (id == 0) {
    if (getrandom(&id, sizeof id, 0) != sizeof id)
      id = static_cast<std::uint64_t>(std::random_device{}()) << 32 | std::random_device{}();
  }
  return id;
}

}  // namespace

Node::Node(NodeOptions options) : m_core(std::make_shared<detail::NodeCore>(options.io_threads)) {}

Node::~Node() = default;

std::size_t Binding::subscriptions() const { return m_hold ? m_hold->subscriptions() : 0; }

Result<Binding> Node::bind(std::string_view endpoint) {
  auto ep = Endpoint::parse(endpoint);
  if (!ep) return std::unexpected(ep.error());
  auto hold = detail::hold_endpoint(*m_core, *ep);
  if (!hold) return std::unexpected(hold.error());
  Binding b;
  b.m_hold = std::move(*hold);
  b.m_endpoint = std::string(endpoint);
  return b;
}

Result<Publisher> Node::publisher(const PublisherOptions& options) {
  auto ep = Endpoint::parse(options.endpoint);
  if (!ep) return std::unexpected(ep.error());
  if (options.topic.empty()) return fail(Errc::invalid_argument, "a publisher needs a topic");
  auto id = random_id();
  if (options.batch_messages == 0 || options.batch_bytes == 0) {
    return fail(Errc::invalid_argument, "batch_messages and batch_bytes must be positive");
  }
  std::unique_ptr<detail::History> history;
  const auto& d = options.durability;
  switch (d.kind) {
    case DurabilityKind::volatile_:
      break;
    case DurabilityKind::transient_local:
      if (d.history == 0 || d.history > max_history_messages) {
        return fail(Errc::invalid_argument,
                    "transient_local needs a history of 1.." + std::to_string(max_history_messages) + " messages");
      }
      history = detail::History::in_memory(d.history, 1);
      break;
    case DurabilityKind::persistent: {
      if (d.dir.empty()) return fail(Errc::invalid_argument, "persistent durability needs a log directory");
      auto opened = detail::History::open_log(d.dir, options.log, options.ack_store, id);
      if (!opened) return std::unexpected(opened.error());
      history = std::move(*opened);
      id = history->publisher_id();  // the log's: the id continues after a restart
      break;
    }
  }
  auto transport = detail::make_publisher_transport(*m_core, *ep,
                                                    {.topic = options.topic,
                                                     .publisher_id = id,
                                                     .max_message_bytes = options.max_message_bytes,
                                                     .batch_messages = options.batch_messages,
                                                     .batch_bytes = options.batch_bytes,
                                                     .publish_timeout = options.publish_timeout,
                                                     .history = history.get()});
  if (!transport) return std::unexpected(transport.error());
  return Publisher(m_core, std::move(history), std::move(*transport), options, id);
}

namespace {

// A durable subscription's exactly-once state (none for the other modes). Opened before
// connecting, so a second process with the same name fails before it receives anything.
Result<detail::DurableState> open_durable_state(const SubscriberOptions& options) {
  const bool persistent = options.durability.kind == DurabilityKind::persistent;
  if (options.durable_name.empty()) {
    if (persistent) return fail(Errc::invalid_argument, "a persistent subscription needs a durable_name");
    if (options.handled_on_ack) return fail(Errc::invalid_argument, "handled_on_ack needs a durable subscription");
    return detail::DurableState{};
  }
  if (!persistent) return fail(Errc::invalid_argument, "durable_name needs persistent durability");
  if (options.handled_on_ack && (options.auto_ack || !options.group.empty())) {
    return fail(Errc::invalid_argument, "handled_on_ack needs auto_ack = false and no consumer group");
  }
  // Each names a file: no separators, no dot files, nothing a shell would mangle.
  auto file_safe = [](const std::string& what, const std::string& name) -> Result<void> {
    if (detail::file_safe_name(name)) return {};  // the rule publishers check again at admission
    return fail(Errc::invalid_argument, what + " '" + name + "': use 1-128 of [A-Za-z0-9._-], not starting with '.'");
  };
  const auto& name = options.durable_name;
  if (auto ok = file_safe("durable name", name); !ok) return std::unexpected(ok.error());
  if (!options.group.empty()) {
    // The group's members on this host share its ledger in their (common) state directory,
    // whatever their durable names.
    if (auto ok = file_safe("group name", options.group); !ok) return std::unexpected(ok.error());
    auto ledger = detail::GroupLedger::open(options.state_dir, options.group);
    if (!ledger) return std::unexpected(ledger.error());
    return detail::DurableState{.store = std::nullopt, .ledger = std::move(*ledger)};
  }
  auto store = detail::DeliveredStore::open(options.state_dir, name);
  if (!store) return std::unexpected(store.error());
  return detail::DurableState{.store = std::move(*store), .ledger = std::nullopt};
}

Result<std::unique_ptr<detail::SubscriberCore>> make_core(const std::shared_ptr<detail::NodeCore>& node,
                                                          const SubscriberOptions& options) {
  if (options.policy.capacity == 0) return fail(Errc::invalid_argument, "policy capacity must be positive");
  if (options.policy.kind != PolicyKind::buffer && options.policy.capacity > max_policy_messages) {
    return fail(Errc::invalid_argument, "policy capacity above " + std::to_string(max_policy_messages));
  }
  std::vector<Endpoint> eps;
  for (const auto& text : options.endpoints) {
    auto ep = Endpoint::parse(text);
    if (!ep) return std::unexpected(ep.error());
    eps.push_back(std::move(*ep));
  }
  if (options.retry.backoff.count() < 0 || options.retry.max_backoff.count() < 0) {
    return fail(Errc::invalid_argument, "retry back-off must not be negative");
  }
  auto store = open_durable_state(options);
  if (!store) return std::unexpected(store.error());
  const auto id = random_id();
  auto transport = detail::make_subscriber_transport(*node, eps,
                                                     {.prefix = options.prefix,
                                                      .policy = options.policy,
                                                      .subscription_id = id,
                                                      .max_message_bytes = options.max_message_bytes,
                                                      .durability = options.durability,
                                                      .durable_name = options.durable_name,
                                                      .from = options.from,
                                                      .group = options.group});
  if (!transport) return std::unexpected(transport.error());
  return std::make_unique<detail::SubscriberCore>(node, std::move(*transport), options, id, std::move(*store));
}

}  // namespace

Result<Subscriber> Node::subscriber(const SubscriberOptions& options) {
  auto core = make_core(m_core, options);
  if (!core) return std::unexpected(core.error());
  return Subscriber(std::move(*core));
}

struct Subscription::State {
  std::unique_ptr<detail::SubscriberCore> core;
  std::function<void(const MessageView&)> handler;
  std::atomic<bool> stop{false};
  mutable std::mutex stats_mutex;
  SubscriberStats stats;
  std::thread thread;
};

Result<Subscription> Node::subscribe(const SubscriberOptions& options,
                                     std::function<void(const MessageView&)> handler) {
  if (!handler) return fail(Errc::invalid_argument, "subscribe() needs a handler");
  auto core = make_core(m_core, options);
  if (!core) return std::unexpected(core.error());
  auto state = std::make_unique<Subscription::State>();
  state->core = std::move(*core);
  state->handler = std::move(handler);
  state->thread = std::thread([s = state.get()] {
    pthread_setname_np(pthread_self(), "rill-handler");
    auto call = [s](const MessageView& m) { s->handler(m); };
    while (!s->stop.load(std::memory_order_relaxed)) {
      s->core->wait_poll(call, 256, std::chrono::milliseconds(50));
      // The lock guards only the stats copy, never the user's handler.
      std::lock_guard lock(s->stats_mutex);
      s->stats = s->core->stats();
    }
  });
  return Subscription(std::move(state));
}

Subscription::Subscription(std::unique_ptr<State> state) : m_state(std::move(state)) {}
Subscription::Subscription(Subscription&&) noexcept = default;
Subscription& Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    stop();
    m_state = std::move(other.m_state);
  }
  return *this;
}
Subscription::~Subscription() {
  stop();
}

void Subscription::stop() {
  if (m_state && m_state->thread.joinable()) {
    m_state->stop.store(true);
    m_state->thread.join();
  }
}

SubscriberStats Subscription::stats() const {
  std::lock_guard lock(m_state->stats_mutex);
  return m_state->stats;
}

// Subscriber is a thin owner of its core.
Subscriber::Subscriber(std::unique_ptr<detail::SubscriberCore> core) : m_core(std::move(core)) {}
Subscriber::Subscriber(Subscriber&&) noexcept = default;
Subscriber& Subscriber::operator=(Subscriber&&) noexcept = default;
Subscriber::~Subscriber() = default;
std::size_t Subscriber::poll(Handler handler, std::size_t limit) {
  return m_core->poll(handler, limit);
}
std::size_t Subscriber::poll_checked(CheckedHandler handler, std::size_t limit) {
  return m_core->poll(handler, limit);
}
std::size_t Subscriber::wait_poll_checked(CheckedHandler handler, std::size_t limit, std::chrono::nanoseconds timeout) {
  return m_core->wait_poll(handler, limit, timeout);
}
Result<void> Subscriber::ack(std::uint64_t publisher_id, std::uint64_t sequence) {
  return m_core->ack(publisher_id, sequence);
}
std::size_t Subscriber::wait_poll(Handler handler, std::size_t limit, std::chrono::nanoseconds timeout) {
  return m_core->wait_poll(handler, limit, timeout);
}
std::optional<Sample> Subscriber::take() {
  return m_core->take();
}
std::optional<Sample> Subscriber::wait_take(std::chrono::nanoseconds timeout) {
  return m_core->wait_take(timeout);
}
const SubscriberStats& Subscriber::stats() const noexcept {
  return m_core->stats();
}
std::uint64_t Subscriber::id() const noexcept {
  return m_core->id();
}

}  // namespace rill

namespace rill {

std::vector<TransportInfo> transports() {
  std::vector<TransportInfo> out;
  for (const detail::TransportEntry* const* t = detail::compiled_transports; *t != nullptr; ++t) {
    const detail::TransportEntry& e = **t;
    out.push_back({.scheme = e.scheme,
                   .summary = e.summary,
                   .notes = e.notes,
                   .zero_copy_loans = e.caps.zero_copy_loans,
                   .history = e.caps.history,
                   .groups = e.caps.groups,
                   .backpressure = e.caps.backpressure});
  }
  return out;
}

}  // namespace rill
