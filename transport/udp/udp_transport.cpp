// The udp transport's entry in the transport table (see transport/transport.hpp).
#include "udp_publisher.hpp"
#include "udp_subscriber.hpp"

namespace rill::detail {

extern const TransportEntry udp_transport;
const TransportEntry udp_transport{
    .scheme = "udp",
    .summary = "IPv4 multicast, best effort or reliable (NAK/retransmit, heartbeats); udp://GROUP:PORT?iface=ADDR&reliable=0|1",
    .notes = "history, groups and backpressure need reliable=1",
    .caps = {.zero_copy_loans = false, .history = true, .groups = true, .backpressure = true},
    .make_publisher = [](NodeCore& node, const Endpoint& ep,
                         const PublisherConfig& config) -> Result<std::unique_ptr<PublisherTransport>> {
      return udp::UdpPublisher::create(node, ep, config);
    },
    .make_subscriber = [](NodeCore& node, std::span<const Endpoint> eps,
                          const SubscriberConfig& config) -> Result<std::unique_ptr<SubscriberTransport>> {
      return udp::UdpSubscriber::create(node, eps, config);
    },
};

}  // namespace rill::detail
