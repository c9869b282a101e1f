// CurveZMQ settings of one tcp endpoint, read from its query (?curve_key=&curve_allow= on a
// publisher, ?curve_key=&curve_server= on a subscriber), and how they are put on a socket.
#pragma once

#include <string>

#include <zmq.hpp>

#include "rill/curve_keys.hpp"
#include "rill/endpoint.hpp"
#include "rill/error.hpp"

namespace rill::detail::tcp {

/// What one side asked for; no key: plain ZMTP, as before.
struct TcpSecurity {
  std::string key_file;     ///< curve_key: our key pair
  std::string allow_file;   ///< curve_allow (publisher): public keys let in, one a line
  std::string server_file;  ///< curve_server (subscriber): the publisher's public key
  CurveKeyPair keys;        ///< read from key_file (a subscriber without one gets a fresh pair)
  std::string server_key;   ///< read from server_file

  [[nodiscard]] bool curve() const noexcept { return !keys.public_key.empty(); }
  /// What two publishers sharing one bound endpoint must agree on.
  [[nodiscard]] std::string identity() const { return keys.public_key + "|" + allow_file; }
};

enum class Side : bool { publisher, subscriber };

/// Reads the query of a tcp endpoint and the key files it names; a clear error names the
/// option or file at fault (unknown options are refused too).
[[nodiscard]] Result<TcpSecurity> parse_security(const Endpoint& ep, Side side);

/// Makes `sock` (the ROUTER) a CURVE server whose handshakes the ZAP handler checks under `domain`.
void make_curve_server(zmq::socket_t& sock, const TcpSecurity& sec, const std::string& domain);
/// Makes `sock` (a DEALER) a CURVE client of the publisher whose key `sec` names.
void make_curve_client(zmq::socket_t& sock, const TcpSecurity& sec);

}  // namespace rill::detail::tcp
