// Dispatch by URI scheme over the table of compiled transports (transport_table.cpp,
// written by CMakeLists.txt); what a transport cannot do is refused here by its caps.
#include "transport.hpp"

#include <random>

namespace rill::detail {

const TransportEntry* find_transport(std::string_view scheme) noexcept {
  for (const TransportEntry* const* t = compiled_transports; *t != nullptr; ++t) {
    if ((*t)->scheme == scheme) return *t;
  }
  return nullptr;
}

namespace {

// The schemes that serve a capability, for an error message ("tcp, shm and udp").
std::string schemes_with(bool TransportCaps::*cap) {
  std::string out;
  std::size_t n = 0;
  for (const TransportEntry* const* t = compiled_transports; *t != nullptr; ++t) n += ((*t)->caps.*cap) ? 1 : 0;
  std::size_t i = 0;
  for (const TransportEntry* const* t = compiled_transports; *t != nullptr; ++t) {
    if (!((*t)->caps.*cap)) continue;
    if (i > 0) out += (i + 1 == n) ? " and " : ", ";
    out += (*t)->scheme;
    ++i;
  }
  return out.empty() ? std::string("no compiled transport") : out;
}

Error no_transport(std::string_view scheme, bool publishing) {
  if (scheme == "http" || scheme == "https") {
    return publishing ? Error{.code = Errc::unsupported,
                              .detail = "publish over http through `rill serve` (POST /topics/{topic}), not an http endpoint"}
                            : Error{.code = Errc::unsupported,
                              .detail = "an http(s) endpoint is a webhook delivery target, not a source: subscribe to the "
                              "publishers and deliver with rill::http::WebhookDeliverer (CLI: rill sub ENDPOINT... "
                              "URL TOPIC_PREFIX)"};
  }
  return Error{.code = Errc::unsupported, .detail = "no transport for scheme '" + std::string(scheme) + "' in this build (rill transports lists them)"};
}

}  // namespace

std::uint64_t new_endpoint_instance() {
  std::random_device rd;
  std::uint64_t id = 0;
  while (id == 0) id = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return id;
}

Result<std::shared_ptr<EndpointHold>> hold_endpoint(NodeCore& node, const Endpoint& ep) {
  const TransportEntry* t = find_transport(ep.scheme);
  if (t == nullptr) return std::unexpected(no_transport(ep.scheme, true));
  if (t->hold == nullptr) return std::shared_ptr<EndpointHold>();
  return t->hold(node, ep);
}

Result<std::unique_ptr<PublisherTransport>> make_publisher_transport(NodeCore& node, const Endpoint& ep,
                                                                     const PublisherConfig& config) {
  const TransportEntry* t = find_transport(ep.scheme);
  if (t == nullptr) return std::unexpected(no_transport(ep.scheme, true));
  if (config.history != nullptr && !t->caps.history) {
    return fail(Errc::unsupported, "transient_local and persistent publishers run over " +
                                       schemes_with(&TransportCaps::history) + " only; " + ep.scheme +
                                       " publishers are volatile");
  }
  return t->make_publisher(node, ep, config);
}

Result<std::unique_ptr<SubscriberTransport>> make_subscriber_transport(NodeCore& node, std::span<const Endpoint> eps,
                                                                       const SubscriberConfig& config) {
  if (eps.empty()) return fail(Errc::invalid_argument, "a subscriber needs at least one endpoint");
  for (const auto& ep : eps) {
    if (ep.scheme != eps.front().scheme) {
      return fail(Errc::invalid_argument, "one subscriber's endpoints must share a scheme");
    }
  }
  const std::string& scheme = eps.front().scheme;
  const TransportEntry* t = find_transport(scheme);
  if (t == nullptr) return std::unexpected(no_transport(scheme, false));
  if (!config.group.empty() && !t->caps.groups) {
    return fail(Errc::unsupported, "consumer groups run over " + schemes_with(&TransportCaps::groups) + " only; " +
                                       scheme + " subscriptions fan out to every subscriber");
  }
  if (config.durability.kind != DurabilityKind::volatile_ && !t->caps.history) {
    return fail(Errc::unsupported, "durable subscriptions run over " + schemes_with(&TransportCaps::history) +
                                       " only; " + scheme + " subscriptions are volatile");
  }
  return t->make_subscriber(node, eps, config);
}

}  // namespace rill::detail
