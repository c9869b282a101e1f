#include "udp_options.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <string>
#include <string_view>

#include "udp_auth.hpp"
#include "udp_wire.hpp"

namespace rill::detail::udp {

namespace {

template <class T>
bool number(std::string_view text, T& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

bool fraction(std::string_view text, double& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size() && out >= 0 && out <= 1;
}

// "L,R,D": loss, reorder, duplicate probabilities.
bool rates(std::string_view text, FaultRates& out) {
  double v[3] = {0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    const auto comma = text.find(',');
    const auto part = i < 2 ? text.substr(0, comma) : text;
    if ((i < 2 && comma == std::string_view::npos) || !fraction(part, v[i])) return false;
    if (i < 2) text.remove_prefix(comma + 1);
  }
  out = {v[0], v[1], v[2]};
  return v[0] + v[1] + v[2] <= 1;
}

}  // namespace

std::string to_string(const in_addr& addr, std::uint16_t port) {
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &addr, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(port);
}

Result<UdpOptions> parse_options(const Endpoint& ep) {
  UdpOptions o;
  const auto bad = [&](std::string_view what) {
    return fail(Errc::invalid_argument, "udp endpoint '" + ep.uri + "': " + std::string(what));
  };
  if (inet_pton(AF_INET, ep.host.c_str(), &o.group) != 1) return bad("the group must be an IPv4 address");
  if (!IN_MULTICAST(ntohl(o.group.s_addr))) return bad("the group must be a multicast address (224.0.0.0/4)");
  o.port = ep.port;
  std::string_view q = ep.query;
  while (!q.empty()) {
    const auto amp = q.find('&');
    const auto pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos) return bad("query item '" + std::string(pair) + "' needs key=value");
    const auto key = pair.substr(0, eq);
    const auto value = pair.substr(eq + 1);
    const std::string v(value);
    unsigned long n = 0;
    if (key == "iface") {
      if (inet_pton(AF_INET, v.c_str(), &o.iface) != 1) return bad("iface must be an IPv4 address");
    } else if (key == "ttl") {
      if (!number(value, n) || n > 255) return bad("ttl must be 0..255");
      o.ttl = static_cast<int>(n);
    } else if (key == "loop" || key == "reliable") {
      if (value != "0" && value != "1") return bad(std::string(key) + " must be 0 or 1");
      (key == "loop" ? o.loop : o.reliable) = value == "1";
    } else if (key == "mtu") {
      if (!number(value, n) || n < 576 || n > max_datagram_bytes + 28) return bad("mtu must be 576..65535");
      o.mtu = n;
    } else if (key == "window") {
      if (!number(value, n) || n < (64u << 10) || n > (1ull << 32)) return bad("window must be 64 KiB..4 GiB");
      o.window_bytes = n;
    } else if (key == "linger_ms") {
      if (!number(value, n) || n > 600000) return bad("linger_ms must be 0..600000");
      o.linger = std::chrono::milliseconds(n);
    } else if (key == "rcvbuf" || key == "sndbuf") {
      if (!number(value, n) || n < 4096 || n > (1u << 30)) return bad(std::string(key) + " must be 4096..1 GiB");
      (key == "rcvbuf" ? o.rcvbuf : o.sndbuf) = static_cast<int>(n);
    } else if (key == "fault_data" || key == "fault_ctl") {
      if (!rates(value, key == "fault_data" ? o.fault.data : o.fault.control)) {
        return bad(std::string(key) + " must be LOSS,REORDER,DUP fractions summing to at most 1");
      }
    } else if (key == "auth_key_file") {
      if (v.empty()) return bad("auth_key_file needs a path");
      auto keys = AuthKeys::load(v);
      if (!keys) return fail(keys.error().code, "udp endpoint '" + ep.uri + "': " + keys.error().detail, keys.error().sys);
      o.auth = std::move(*keys);
      o.auth_key_file = v;
    } else if (key == "auth_max_skew_s") {
      if (!number(value, n) || n > 86400) return bad("auth_max_skew_s must be 0..86400");
      o.auth_max_skew_s = static_cast<std::uint32_t>(n);
    } else if (key == "fault_seed") {
      if (!number(value, o.fault.seed)) return bad("fault_seed must be a number");
    } else {
      return bad("unknown query key '" + std::string(key) + "'");
    }
  }
  return o;
}

}  // namespace rill::detail::udp
