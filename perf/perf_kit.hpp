#pragma once
// Perf kit behind `rill perf`: runs a ping-pong and a throughput test in two processes
// (the far side is a forked child), measures the same work over raw ZeroMQ as a
// baseline in the same run, and writes the JSON and SVG reports of DESIGN.md.
//
// Process model (why fork): latency between two processes on pinned cores is what a
// user of a brokerless bus sees; threads in one process would share caches and
// allocator state and flatter the numbers.
//
// Call run_pingpong / run_throughput before the calling program starts other threads
// or ZeroMQ contexts: the child is forked and then builds its own context.
#include <cstdint>
#include <expected>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rill::perf {

/// Where the two sides run: different cores, one core, or wherever the OS likes.
enum class Placement { cross, same, none };
/// How a receiving side waits for the next message: busy poll (never sleeps; yields the
/// core between polls so the transport's own threads pinned beside it can run), or
/// sleep in the kernel until a message arrives.
enum class Idle { spin, block };

/// What to measure and where to write it; defaults are the `rill perf` defaults.
struct PerfOptions {
  std::string transport = "tcp";
  std::size_t size = 64;                    // payload bytes (at least 1 is sent: byte 0 is a tag)
  std::size_t count = 100000;               // timed round trips (pingpong)
  std::size_t throughput_count = 2000000;   // messages for the throughput run
  std::size_t warmup = 2000;                // untimed round trips before the timed ones
  double rate = 0;                          // 0 = as fast as possible (throughput run)
  Placement placement = Placement::cross;
  Idle idle = Idle::spin;
  std::uint16_t base_port = 27100;          // raw baseline uses base_port .. base_port + 9
  std::string json_path;                    // empty: no JSON
  std::string plot_path;                    // empty: no SVG
  int step_timeout_ms = 5000;               // longest wait for any single step (hello, reply, next message)
  std::size_t batch = 1;                    // subject's messages per transport frame in the throughput run
};

/// What the near side sees of the far side (the forked child).
enum class Peer {
  starting,  // child running, has not called ready() yet
  ready,     // child called ready()
  done,      // child delivered its result record (throughput receiver)
  gone,      // child exited or failed without a result: stop waiting for it
};

/// Cross-process handshake the runner gives both sides; a pipe from child to parent
/// underneath. Not thread-safe: call each function from the side's main thread only.
struct Link {
  /// Far side (child): announce that it can receive now. Idempotent.
  std::function<void()> ready;
  /// Near side (parent): non-blocking look at the far side's state (one poll(2) call).
  std::function<Peer()> peer;
};

/// A ping-pong test: `echo` runs in the child and echoes until told to stop (returns
/// its exit code); `ping` runs in the parent and returns `count` RTT samples in ns.
struct PingPongRunner {
  std::string name;  // "rill" or "raw-zmq"
  std::function<int(const PerfOptions&, const Link&)> echo;
  std::function<std::expected<std::vector<std::uint64_t>, std::string>(const PerfOptions&, const Link&)> ping;
};

/// A throughput test. `send` runs in the parent: it must not start the timed stream
/// before link.peer() == Peer::ready, and must keep its connection open until
/// link.peer() is done/gone (so nothing queued is lost at close). `receive` runs in the
/// child: it calls link.ready() once a message from the sender has actually arrived
/// (proves the subscription is live), then returns msgs/s measured first-to-last and
/// the number of messages lost.
struct ThroughputRunner {
  std::string name;
  std::function<std::expected<void, std::string>(const PerfOptions&, const Link&)> send;
  std::function<std::expected<std::pair<double, std::uint64_t>, std::string>(const PerfOptions&, const Link&)> receive;
};

/// Nearest-rank percentiles in microseconds; NaN everywhere when there are no samples.
struct Percentiles {
  double p50 = nan(), p90 = nan(), p99 = nan(), p999 = nan(), max = nan();
  std::size_t n = 0;
  static constexpr double nan() { return std::numeric_limits<double>::quiet_NaN(); }
};
/// Percentiles of RTT samples given in nanoseconds (sorts its own copy; move in to avoid one).
[[nodiscard]] Percentiles percentiles_us(std::vector<std::uint64_t> samples_ns);

/// Outcome of one ping-pong run; placement_used says what pinning really happened.
struct PingPongResult {
  Percentiles rtt{};
  std::vector<std::uint64_t> samples_ns;
  std::string placement_used;
};
/// Outcome of one throughput run, as measured by the receiver.
struct ThroughputResult {
  double msgs_per_s = Percentiles::nan();  // NaN: not measured
  std::uint64_t lost = 0;
};

/// Forks the echo side, pins both sides, runs ping in the calling process. The caller's
/// CPU affinity is restored afterwards. Never hangs: a stuck child is killed.
[[nodiscard]] std::expected<PingPongResult, std::string> run_pingpong(const PingPongRunner&, const PerfOptions&);
/// Forks the receiver, pins both sides, runs send in the calling process and collects
/// the receiver's measurement through a pipe. Never hangs: a stuck child is killed.
[[nodiscard]] std::expected<ThroughputResult, std::string> run_throughput(const ThroughputRunner&, const PerfOptions&);

/// Pins the calling thread (and threads it creates later) for the given side (0 =
/// measuring/sender, 1 = far side). Uses the first two CPUs the process may run on.
/// Returns the placement really used: "cross", "same", "none", or a text saying why it
/// degraded (e.g. "same (cross needs 2 CPUs, 1 available)").
std::string pin_side(Placement, int side);

/// Raw ZeroMQ baselines: PUB/SUB pairs on 127.0.0.1, base_port .. base_port + 2, no rill.
[[nodiscard]] PingPongRunner raw_zmq_pingpong();
[[nodiscard]] ThroughputRunner raw_zmq_throughput();
/// Raw UDP baselines: multicast on 127.0.0.1 (the path rill's udp perf uses), groups
/// 239.255.78.x, ports base_port + 10 .. base_port + 12, one datagram per message.
[[nodiscard]] PingPongRunner raw_udp_pingpong();
[[nodiscard]] ThroughputRunner raw_udp_throughput();

/// Raw shared-memory baselines: a bare cache-line ping-pong (the hardware floor) and a
/// plain single-producer ring with a memcpy per message, between the same forked pair.
[[nodiscard]] PingPongRunner raw_shm_pingpong();
[[nodiscard]] ThroughputRunner raw_shm_throughput();

/// Everything one `rill perf` run measured. `subject_name` labels the first series
/// (rill) in the SVG and the summary; the JSON layout is fixed by DESIGN.md.
struct Report {
  PerfOptions opts;
  std::string baseline_name;
  PingPongResult rill_pp, base_pp;
  ThroughputResult rill_tp, base_tp;
  std::string subject_name = "rill";
};
/// Writes the DESIGN.md perf JSON (one line); non-finite numbers become null.
[[nodiscard]] std::expected<void, std::string> write_json(const Report&, const std::string& path);
/// Writes a standalone SVG of the RTT percentile curves of both series.
[[nodiscard]] std::expected<void, std::string> write_svg(const Report&, const std::string& path);
/// A few human-readable lines: percentiles of both sides, ratios, throughput, placement.
[[nodiscard]] std::string summary_text(const Report&);

}  // namespace rill::perf
