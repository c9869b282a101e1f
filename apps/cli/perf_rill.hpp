// rill's runners for the perf kit (the raw baselines live in perf/).
#pragma once

#include <string>

#include "perf_kit.hpp"

namespace rill::cli {

/// Ping-pong through rill over tcp, same shape as perf::raw_zmq_pingpong().
perf::PingPongRunner rill_tcp_pingpong();
/// A backpressured stream through rill over tcp (nothing lost), beside perf::raw_zmq_throughput().
perf::ThroughputRunner rill_tcp_throughput();
/// Ping-pong through rill over shm with loans (zero copy), beside perf::raw_shm_pingpong().
perf::PingPongRunner rill_shm_pingpong();
/// A stream through rill over shm to a drop_oldest subscriber, beside perf::raw_shm_throughput().
perf::ThroughputRunner rill_shm_throughput();
/// The same runners for o.transport ("tcp" or "udp"); `udp_query` is appended to the
/// udp endpoints (e.g. "reliable=1&mtu=9000").
perf::PingPongRunner rill_pingpong(const std::string& udp_query);
perf::ThroughputRunner rill_throughput(const std::string& udp_query);

}  // namespace rill::cli
