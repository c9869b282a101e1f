// Socket settings shared by both tcp sides.
#pragma once

#include <cstddef>

namespace rill::detail::tcp {

/// Messages a peer's pipe holds before a drop-policy peer is skipped (per peer).
inline constexpr int pipe_high_water = 131072;
/// A subscriber re-sends its subscription this often; it doubles as a keepalive.
inline constexpr int keepalive_ms = 200;
/// Until welcomed, the subscription is retried this often.
inline constexpr int subscribe_retry_ms = 10;
/// A refused subscription asks again this often (the publisher may restart with more durability).
inline constexpr int reject_retry_ms = 1000;
/// A subscriber silent for this long is considered gone by its publisher.
inline constexpr int peer_timeout_ms = 3000;
/// How long closing sockets keep trying to deliver what is queued (data, BYE).
inline constexpr int linger_ms = 2000;

}  // namespace rill::detail::tcp
