// Node: owns the I/O (ZeroMQ context and its thread) and creates publishers and subscribers.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "rill/publisher.hpp"
#include "rill/subscriber.hpp"

namespace rill {

namespace detail {
class EndpointHold;
}

/// Node-wide settings.
struct NodeOptions {
  int io_threads = 1;  ///< ZeroMQ I/O threads behind every tcp socket of this node
};

/// A callback-mode subscription: its own thread polls and calls the handler.
/// Destroying (or stop()) joins that thread; the handler is never called after.
class Subscription {
 public:
  Subscription(Subscription&&) noexcept;
  Subscription& operator=(Subscription&&) noexcept;
  ~Subscription();
  /// Stops the thread and waits for it.
  void stop();
  /// Stats as of the last poll round (copied under a lock, safe from any thread).
  [[nodiscard]] SubscriberStats stats() const;

 private:
  friend class Node;
  struct State;
  explicit Subscription(std::unique_ptr<State> state);
  std::unique_ptr<State> m_state;
};

/// An endpoint kept bound before (and between) its publishers: subscribers connect to it
/// early, and every publisher later created on it greets them before its first message
/// (`rill serve` binds its --publish endpoint this way). Movable; unbinds when the last of
/// it and the endpoint's publishers is gone.
class Binding {
 public:
  Binding() = default;
  /// Subscriptions connected to the endpoint now (0 on transports that bind nothing: udp).
  [[nodiscard]] std::size_t subscriptions() const;
  [[nodiscard]] const std::string& endpoint() const noexcept { return m_endpoint; }

 private:
  friend class Node;
  std::shared_ptr<detail::EndpointHold> m_hold;
  std::string m_endpoint;
};

/// Thread-safe: publishers and subscribers may be created from any thread.
/// Publishers and subscribers keep the node's I/O alive while they exist.
class Node {
 public:
  explicit Node(NodeOptions options = {});
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// Binds `endpoint` with no publisher on it yet (see Binding).
  [[nodiscard]] Result<Binding> bind(std::string_view endpoint);
  /// Binds options.endpoint (or joins the publishers already there) and returns a
  /// publisher for options.topic.
  [[nodiscard]] Result<Publisher> publisher(const PublisherOptions& options);
  /// Connects to options.endpoints and returns a subscriber to poll.
  [[nodiscard]] Result<Subscriber> subscriber(const SubscriberOptions& options);
  /// Callback mode: like subscriber(), but a thread of its own calls `handler`.
  [[nodiscard]] Result<Subscription> subscribe(const SubscriberOptions& options,
                                               std::function<void(const MessageView&)> handler);

 private:
  std::shared_ptr<detail::NodeCore> m_core;
};

}  // namespace rill
