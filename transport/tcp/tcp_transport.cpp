// The tcp transport's entry in the transport table (see transport/transport.hpp).
#include "tcp_endpoint.hpp"
#include "tcp_publisher.hpp"
#include "tcp_subscriber.hpp"

namespace rill::detail {

extern const TransportEntry tcp_transport;
const TransportEntry tcp_transport{
    .scheme = "tcp",
    .summary = "ZeroMQ ROUTER/DEALER, per-subscriber policy and credit; tcp://HOST:PORT",
    .notes = "loan() is heap memory copied into the send buffer",
    .caps = {.zero_copy_loans = false, .history = true, .groups = true, .backpressure = true},
    .make_publisher = [](NodeCore& node, const Endpoint& ep,
                         const PublisherConfig& config) -> Result<std::unique_ptr<PublisherTransport>> {
      return tcp::TcpPublisher::create(node, ep, config);
    },
    .make_subscriber = [](NodeCore& node, std::span<const Endpoint> eps,
                          const SubscriberConfig& config) -> Result<std::unique_ptr<SubscriberTransport>> {
      return tcp::TcpSubscriber::create(node, eps, config);
    },
    .hold = [](NodeCore& node, const Endpoint& ep) -> Result<std::shared_ptr<EndpointHold>> {
      auto bound = tcp::TcpEndpoint::open(node, ep);
      if (!bound) return std::unexpected(bound.error());
      return std::shared_ptr<EndpointHold>(std::move(*bound));
    },
};

}  // namespace rill::detail
