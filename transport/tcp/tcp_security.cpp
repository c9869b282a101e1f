#include "tcp_security.hpp"

#include <array>
#include <string_view>

#include <zmq.h>

namespace rill::detail::tcp {

namespace {

void set_text(zmq::socket_t& sock, int option, const std::string& value) {
  // libzmq takes a CURVE key as its 40 Z85 characters (no terminator).
  if (zmq_setsockopt(sock.handle(), option, value.data(), value.size()) != 0) throw zmq::error_t();
}

}  // namespace

Result<TcpSecurity> parse_security(const Endpoint& ep, Side side) {
  TcpSecurity sec;
  const auto bad = [&](const std::string& what) {
    return fail(Errc::invalid_argument, "tcp endpoint '" + ep.uri + "': " + what);
  };
  std::string_view q = ep.query;
  while (!q.empty()) {
    const auto amp = q.find('&');
    const auto pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos || eq + 1 == pair.size()) {
      return bad("query item '" + std::string(pair) + "' needs key=value");
    }
    const auto key = pair.substr(0, eq);
    const std::string value(pair.substr(eq + 1));
    if (key == "curve_key") {
      sec.key_file = value;
    } else if (key == "curve_allow" && side == Side::publisher) {
      sec.allow_file = value;
    } else if (key == "curve_server" && side == Side::subscriber) {
      sec.server_file = value;
    } else {
      return bad("unknown option '" + std::string(key) + "' (a " +
                 (side == Side::publisher ? "publisher takes curve_key and curve_allow)"
                                          : "subscriber takes curve_key and curve_server)"));
    }
  }
  if (sec.key_file.empty() && sec.allow_file.empty() && sec.server_file.empty()) return sec;
  if (!zmq_has("curve")) return fail(Errc::unsupported, "this libzmq is built without CURVE (libsodium)");
  if (side == Side::publisher && sec.key_file.empty()) return bad("curve_allow needs curve_key (the publisher's key pair)");
  if (side == Side::subscriber && sec.server_file.empty()) {
    return bad("curve_key needs curve_server (the publisher's public key, to verify it)");
  }
  if (!sec.key_file.empty()) {
    auto keys = read_curve_key_pair(sec.key_file);
    if (!keys) return bad(keys.error().detail);
    sec.keys = std::move(*keys);
  } else {
    // A subscriber only verifying the publisher: a fresh key pair for this connection (a
    // publisher with an allow file refuses it, one without lets it in).
    std::array<char, 41> pub{};
    std::array<char, 41> secret{};
    if (zmq_curve_keypair(pub.data(), secret.data()) != 0) return fail(Errc::io_error, "zmq_curve_keypair failed");
    sec.keys = {pub.data(), secret.data()};
  }
  if (!sec.server_file.empty()) {
    auto server = read_curve_public_key(sec.server_file);
    if (!server) return bad(server.error().detail);
    sec.server_key = std::move(*server);
  }
  return sec;
}

void make_curve_server(zmq::socket_t& sock, const TcpSecurity& sec, const std::string& domain) {
  sock.set(zmq::sockopt::curve_server, 1);
  set_text(sock, ZMQ_CURVE_SECRETKEY, sec.keys.secret_key);
  set_text(sock, ZMQ_ZAP_DOMAIN, domain);
  // Without a bound ZAP handler libzmq lets every client in; ours is bound before this socket
  // and lives as long as it. Where libzmq has the (draft) enforce option, it makes that sure.
  constexpr int zap_enforce_domain = 93;  // ZMQ_ZAP_ENFORCE_DOMAIN, a draft option in 4.3
  const int on = 1;
  zmq_setsockopt(sock.handle(), zap_enforce_domain, &on, sizeof on);
}

void make_curve_client(zmq::socket_t& sock, const TcpSecurity& sec) {
  set_text(sock, ZMQ_CURVE_SERVERKEY, sec.server_key);
  set_text(sock, ZMQ_CURVE_PUBLICKEY, sec.keys.public_key);
  set_text(sock, ZMQ_CURVE_SECRETKEY, sec.keys.secret_key);
}

}  // namespace rill::detail::tcp
