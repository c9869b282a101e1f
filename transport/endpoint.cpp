#include <charconv>

#include "rill/endpoint.hpp"

namespace rill {

Result<Endpoint> Endpoint::parse(std::string_view text) {
  Endpoint ep;
  ep.uri = std::string(text);
  const auto sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) {
    return fail(Errc::invalid_argument, "endpoint '" + ep.uri + "' is not a URI like tcp://127.0.0.1:5555");
  }
  ep.scheme = std::string(text.substr(0, sep));
  auto rest = text.substr(sep + 3);
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    ep.query = std::string(rest.substr(q + 1));
    rest = rest.substr(0, q);
  }
  if (ep.scheme == "tcp" || ep.scheme == "udp") {
    // udp: GROUP:PORT; its query (iface, ttl, reliable, ...) is checked by the transport.
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      return fail(Errc::invalid_argument, ep.scheme + " endpoint '" + ep.uri + "' needs host:port");
    }
    ep.host = std::string(rest.substr(0, colon));
    const auto port_text = rest.substr(colon + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || value == 0 || value > 65535) {
      return fail(Errc::invalid_argument, ep.scheme + " endpoint '" + ep.uri + "' has a bad port");
    }
    ep.port = static_cast<std::uint16_t>(value);
    return ep;
  }
  if (ep.scheme == "shm") {
    // The name is checked (and the query read) by the shm transport.
    if (rest.empty()) return fail(Errc::invalid_argument, "shm endpoint '" + ep.uri + "' needs a name, like shm://quotes");
    ep.host = std::string(rest);
    return ep;
  }
  if (ep.scheme == "http" || ep.scheme == "https") {
    // A webhook delivery target: host[:port]/path; the path stays in uri (transport/http).
    const auto slash = rest.find('/');
    const auto authority = rest.substr(0, slash);
    const auto colon = authority.rfind(':');
    ep.host = std::string(authority.substr(0, colon));
    ep.port = ep.scheme == "http" ? 80 : 443;
    if (colon != std::string_view::npos) {
      const auto port_text = authority.substr(colon + 1);
      unsigned value = 0;
      auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
      if (ec != std::errc{} || end != port_text.data() + port_text.size() || value == 0 || value > 65535) {
        return fail(Errc::invalid_argument, ep.scheme + " endpoint '" + ep.uri + "' has a bad port");
      }
      ep.port = static_cast<std::uint16_t>(value);
    }
    if (ep.host.empty()) return fail(Errc::invalid_argument, ep.scheme + " endpoint '" + ep.uri + "' needs a host");
    return ep;
  }
  if (ep.scheme == "jetstream") {
    // HOST:PORT[,HOST:PORT...]/STREAM: the server list in host; the whole of it (stream,
    // query) is checked by the jetstream transport.
    const auto slash = rest.find('/');
    ep.host = std::string(rest.substr(0, slash));
    if (ep.host.empty() || slash == std::string_view::npos || slash + 1 == rest.size()) {
      return fail(Errc::invalid_argument, "jetstream endpoint '" + ep.uri + "' needs servers and a stream, like "
                                          "jetstream://127.0.0.1:4222/orders");
    }
    return ep;
  }
  return fail(Errc::unsupported, "unknown endpoint scheme '" + ep.scheme + "' in '" + ep.uri + "'");
}

}  // namespace rill
