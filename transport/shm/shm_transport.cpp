// The shm transport's entry in the transport table (see transport/transport.hpp).
#include "shm_publisher.hpp"
#include "shm_subscriber.hpp"

namespace rill::detail {

extern const TransportEntry shm_transport;
const TransportEntry shm_transport{
    .scheme = "shm",
    .summary = "shared memory on one host: a directory per endpoint, a segment per publisher, per-subscriber rings, futex wake-up; shm://NAME",
    .notes = "peers share a pid namespace; a durable publisher copies each message into its history",
    .caps = {.zero_copy_loans = true, .history = true, .groups = true, .backpressure = true},
    .make_publisher = [](NodeCore& node, const Endpoint& ep,
                         const PublisherConfig& config) -> Result<std::unique_ptr<PublisherTransport>> {
      return shm::ShmPublisher::create(node, ep, config);
    },
    .make_subscriber = [](NodeCore&, std::span<const Endpoint> eps,
                          const SubscriberConfig& config) -> Result<std::unique_ptr<SubscriberTransport>> {
      return shm::ShmSubscriber::create(eps, config);
    },
};

}  // namespace rill::detail
