// The jetstream transport's entry in the transport table (see transport/transport.hpp).
#include "js_publisher.hpp"
#include "js_subscriber.hpp"

namespace rill::detail {

extern const TransportEntry jetstream_transport;
const TransportEntry jetstream_transport{
    .scheme = "jetstream",
    .summary = "NATS JetStream stream, replicated across servers; jetstream://HOST:PORT[,HOST:PORT]/STREAM?replicas=N",
    .notes = "history lives in the stream; backpressure is the publish-ack window, not the subscriber's pace",
    .caps = {.zero_copy_loans = false, .history = true, .groups = true, .backpressure = true},
    .make_publisher = [](NodeCore&, const Endpoint& ep, const PublisherConfig& config)
        -> Result<std::unique_ptr<PublisherTransport>> { return js::JsPublisher::create(ep, config); },
    .make_subscriber = [](NodeCore&, std::span<const Endpoint> eps, const SubscriberConfig& config)
        -> Result<std::unique_ptr<SubscriberTransport>> { return js::JsSubscriber::create(eps, config); },
};

}  // namespace rill::detail
