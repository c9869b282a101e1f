// Settings of one udp endpoint, parsed from its URI query.
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "transport/transport.hpp"
#include "udp_fault.hpp"

namespace rill::detail::udp {

class AuthKeys;

/// udp://GROUP:PORT?iface=ADDR&ttl=N&loop=0|1&reliable=0|1&mtu=BYTES&window=BYTES&linger_ms=MS
///   &rcvbuf=BYTES&sndbuf=BYTES&auth_key_file=FILE&auth_max_skew_s=S&fault_data=L,R,D&fault_ctl=L,R,D&fault_seed=N
struct UdpOptions {
  in_addr group{};  ///< IPv4 multicast group (224.0.0.0/4)
  std::uint16_t port = 0;
  in_addr iface{};                         ///< interface address to join on and send from (0.0.0.0: routing decides)
  int ttl = 1;                             ///< multicast hops (1: this link only)
  bool loop = true;                        ///< deliver to subscribers on the sending host too
  bool reliable = true;                    ///< NAK/retransmit, heartbeats, in-order delivery
  std::size_t mtu = 1500;                  ///< path MTU; datagrams carry at most mtu - 28 bytes
  std::size_t window_bytes = 64u << 20;    ///< publisher's retransmit window (reliable)
  std::chrono::milliseconds linger{2000};  ///< close(): serve retransmits/BYE this long at most
  int rcvbuf = 8 << 20;                    ///< socket receive buffer (SO_RCVBUFFORCE when allowed)
  int sndbuf = 4 << 20;
  /// Group key(s) from auth_key_file: every datagram carries a MAC (PROTOCOL.md 10.13). Null: plain.
  std::shared_ptr<const AuthKeys> auth;
  std::string auth_key_file;
  std::uint32_t auth_max_skew_s = 60;  ///< a sender's clock may be this far from ours (0: not checked)
  FaultConfig fault;                   ///< testing only

  /// Largest datagram this endpoint sends, without the authentication trailer.
  [[nodiscard]] std::size_t max_datagram() const noexcept { return wire_datagram() - (auth ? 40 : 0); }
  /// Largest datagram on the wire (what a receive buffer must hold).
  [[nodiscard]] std::size_t wire_datagram() const noexcept { return mtu - 28; }
};

/// Parses `ep` (scheme udp); a clear error names the bad key or value.
[[nodiscard]] Result<UdpOptions> parse_options(const Endpoint& ep);

/// "239.255.0.1:7400" for logs.
[[nodiscard]] std::string to_string(const in_addr& addr, std::uint16_t port);

}  // namespace rill::detail::udp
