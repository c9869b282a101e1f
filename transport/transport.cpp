#include "transport.hpp"

#ifdef RILL_WITH_TCP
#include "tcp/tcp_publisher.hpp"
#include "tcp/tcp_subscriber.hpp"
#endif
#ifdef RILL_WITH_SHM
#include "shm/shm_publisher.hpp"
#include "shm/shm_subscriber.hpp"
#endif
#ifdef RILL_WITH_UDP
#include "udp/udp_publisher.hpp"
#include "udp/udp_subscriber.hpp"
#endif

namespace rill::detail {

// Transports register by URI scheme here; each lives in its own folder.
Result<std::unique_ptr<PublisherTransport>> make_publisher_transport(NodeCore& node, const Endpoint& ep,
                                                                     const PublisherConfig& config) {
  if (config.history != nullptr && ep.scheme != "tcp" && ep.scheme != "shm" && ep.scheme != "udp") {
    return fail(Errc::unsupported, "transient_local and persistent publishers run over tcp, shm and udp only; " + ep.scheme +
                                       " publishers are volatile");
  }
#ifdef RILL_WITH_TCP
  if (ep.scheme == "tcp") return tcp::TcpPublisher::create(node, ep, config);
#endif
#ifdef RILL_WITH_SHM
  if (ep.scheme == "shm") return shm::ShmPublisher::create(ep, config);
#endif
#ifdef RILL_WITH_UDP
  if (ep.scheme == "udp") return udp::UdpPublisher::create(node, ep, config);
#endif
  (void)node;
  if (ep.scheme == "http" || ep.scheme == "https") {
    return fail(Errc::unsupported,
                "publish over http through `rill serve` (POST /topics/{topic}), not an http endpoint");
  }
  return fail(Errc::unsupported, "no transport for scheme '" + ep.scheme + "'");
}

Result<std::unique_ptr<SubscriberTransport>> make_subscriber_transport(NodeCore& node, std::span<const Endpoint> eps,
                                                                       const SubscriberConfig& config) {
  if (eps.empty()) return fail(Errc::invalid_argument, "a subscriber needs at least one endpoint");
  for (const auto& ep : eps) {
    if (ep.scheme != eps.front().scheme) {
      return fail(Errc::invalid_argument, "one subscriber's endpoints must share a scheme");
    }
  }
  if (!config.group.empty() && eps.front().scheme != "tcp" && eps.front().scheme != "shm" &&
      eps.front().scheme != "udp") {
    return fail(Errc::unsupported, "consumer groups run over tcp, shm and udp only; " + eps.front().scheme +
                                       " subscriptions fan out to every subscriber");
  }
  if (config.durability.kind != DurabilityKind::volatile_ && eps.front().scheme != "tcp" &&
      eps.front().scheme != "shm" &&
      eps.front().scheme != "udp") {
    return fail(Errc::unsupported, "durable subscriptions run over tcp, shm and udp only; " + eps.front().scheme +
                                       " subscriptions are volatile");
  }
#ifdef RILL_WITH_TCP
  if (eps.front().scheme == "tcp") return tcp::TcpSubscriber::create(node, eps, config);
#endif
#ifdef RILL_WITH_SHM
  if (eps.front().scheme == "shm") return shm::ShmSubscriber::create(eps, config);
#endif
#ifdef RILL_WITH_UDP
  if (eps.front().scheme == "udp") return udp::UdpSubscriber::create(node, eps, config);
#endif
  (void)node;
  if (eps.front().scheme == "http" || eps.front().scheme == "https") {
    return fail(Errc::unsupported,
                "an http(s) endpoint is a webhook delivery target, not a source: subscribe to the publishers and "
                "deliver with rill::http::WebhookDeliverer (CLI: rill sub ENDPOINT... URL TOPIC_PREFIX)");
  }
  return fail(Errc::unsupported, "no transport for scheme '" + eps.front().scheme + "'");
}

}  // namespace rill::detail
