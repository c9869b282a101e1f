// Scratch check of the perf kit on its own (built only with RILL_PERFKIT_STANDALONE):
// runs the raw ZeroMQ baselines, writes the JSON and SVG, and proves that a broken
// far side ends in an error string instead of a hang.
//
//   perf_selftest [--count N] [--tp-count N] [--size B] [--rate MSGS_PER_S] [--placement cross|same|none]
//                 [--json FILE] [--plot FILE] [--faults-only]
#include "perf_kit.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <spdlog/fmt/fmt.h>
#include <string_view>
#include <thread>
#include <zmq.hpp>

using namespace rill::perf;
using Clock = std::chrono::steady_clock;

namespace {

int failures = 0;

void check(bool ok, std::string_view what) {
  fmt::print("{} {}\n", ok ? "ok  " : "FAIL", what);
  if (!ok) ++failures;
}

template <class T>
void expect_error(const std::expected<T, std::string>& r, std::string_view needle, std::string_view what,
                  Clock::time_point start, std::chrono::milliseconds within) {
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  const bool ok = !r && r.error().find(needle) != std::string::npos && took <= within;
  check(ok, fmt::format("{}: {} ({} ms)", what, r ? std::string("no error") : r.error(), took.count()));
}

// Far sides that misbehave on purpose; each run must end with an error, in bounded time.
void fault_cases(PerfOptions o) {
  o.step_timeout_ms = 500;
  o.count = 100;
  o.warmup = 10;
  o.throughput_count = 1000;
  o.base_port = static_cast<std::uint16_t>(o.base_port + 20);
  const auto limit = std::chrono::milliseconds(3000);

  PingPongRunner hang = raw_zmq_pingpong();
  hang.name = "hanging-echo";
  hang.echo = [](const PerfOptions&, const Link&) {
    for (;;) pause();
    return 0;
  };
  hang.ping = [](const PerfOptions& opt, const Link&) -> std::expected<std::vector<std::uint64_t>, std::string> {
    return std::vector<std::uint64_t>(opt.count, 1000);
  };
  auto t0 = Clock::now();
  expect_error(run_pingpong(hang, o), "killed", "echo that never exits is killed", t0, limit);

  PingPongRunner dead = raw_zmq_pingpong();
  dead.echo = [](const PerfOptions&, const Link&) { return 7; };
  t0 = Clock::now();
  expect_error(run_pingpong(dead, o), "exited before answering hello", "echo that dies at start", t0, limit);

  PingPongRunner echo_throws = raw_zmq_pingpong();
  echo_throws.echo = [](const PerfOptions&, const Link&) -> int { throw std::runtime_error("echo kaput"); };
  t0 = Clock::now();
  expect_error(run_pingpong(echo_throws, o), "echo kaput", "echo that throws reports why", t0, limit);

  PingPongRunner thrower = raw_zmq_pingpong();
  thrower.ping = [](const PerfOptions&, const Link&) -> std::expected<std::vector<std::uint64_t>, std::string> {
    throw std::runtime_error("boom");
  };
  t0 = Clock::now();
  expect_error(run_pingpong(thrower, o), "boom", "ping that throws", t0, limit);

  ThroughputRunner never_ready = raw_zmq_throughput();
  never_ready.receive = [](const PerfOptions&, const Link&) -> std::expected<std::pair<double, std::uint64_t>, std::string> {
    for (;;) pause();
  };
  t0 = Clock::now();
  expect_error(run_throughput(never_ready, o), "not ready", "receiver that never gets ready", t0, limit);

  ThroughputRunner failing = raw_zmq_throughput();
  failing.receive = [](const PerfOptions&, const Link& link) -> std::expected<std::pair<double, std::uint64_t>, std::string> {
    link.ready();
    return std::unexpected(std::string("disk on fire"));
  };
  t0 = Clock::now();
  expect_error(run_throughput(failing, o), "disk on fire", "receiver error text reaches the caller", t0, limit);

  ThroughputRunner stuck = raw_zmq_throughput();
  stuck.send = [](const PerfOptions&, const Link&) -> std::expected<void, std::string> { return {}; };
  stuck.receive = [](const PerfOptions&, const Link& link) -> std::expected<std::pair<double, std::uint64_t>, std::string> {
    link.ready();
    for (;;) pause();
  };
  t0 = Clock::now();
  expect_error(run_throughput(stuck, o), "killed", "receiver stuck after ready is killed", t0, limit);

  ThroughputRunner not_reading = raw_zmq_throughput();
  not_reading.receive = [](const PerfOptions& opt, const Link& link) -> std::expected<std::pair<double, std::uint64_t>, std::string> {
    zmq::context_t ctx{1};
    zmq::socket_t sub{ctx, zmq::socket_type::sub};
    sub.set(zmq::sockopt::rcvhwm, 1000);
    sub.set(zmq::sockopt::subscribe, "");
    sub.connect(fmt::format("tcp://127.0.0.1:{}", opt.base_port + 2));
    zmq::message_t probe;
    if (!sub.recv(probe)) return std::unexpected(std::string("no probe"));
    link.ready();  // then never read again: queues fill, the sender must not block forever
    for (;;) pause();
  };
  PerfOptions flood = o;
  flood.throughput_count = 5000000;
  t0 = Clock::now();
  expect_error(run_throughput(not_reading, flood), "stopped taking messages", "receiver that stops reading", t0,
               std::chrono::milliseconds(10000));

  ThroughputRunner crash = raw_zmq_throughput();
  crash.receive = [](const PerfOptions&, const Link&) -> std::expected<std::pair<double, std::uint64_t>, std::string> {
    std::abort();
  };
  t0 = Clock::now();
  expect_error(run_throughput(crash, o), "signal", "receiver that aborts", t0, limit);
}

Placement parse_placement(std::string_view s) {
  return s == "same" ? Placement::same : s == "none" ? Placement::none : Placement::cross;
}

}  // namespace

int main(int argc, char** argv) {
  PerfOptions o;
  o.count = 20000;
  o.throughput_count = 1000000;
  o.json_path = "/tmp/perf.json";
  o.plot_path = "/tmp/perf.svg";
  bool faults_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--count") o.count = std::strtoull(v, nullptr, 10), ++i;
    else if (a == "--tp-count") o.throughput_count = std::strtoull(v, nullptr, 10), ++i;
    else if (a == "--size") o.size = std::strtoull(v, nullptr, 10), ++i;
    else if (a == "--rate") o.rate = std::strtod(v, nullptr), ++i;
    else if (a == "--placement") o.placement = parse_placement(v), ++i;
    else if (a == "--json") o.json_path = v, ++i;
    else if (a == "--plot") o.plot_path = v, ++i;
    else if (a == "--faults-only") faults_only = true;
    else {
      fmt::print(stderr, "unknown argument {}\n", a);
      return 2;
    }
  }

  fault_cases(o);
  if (faults_only) return failures == 0 ? 0 : 1;

  // The same raw run twice, as subject and baseline: their ratio shows the run-to-run noise.
  Report rep;
  rep.opts = o;
  rep.baseline_name = "raw-zmq";
  rep.subject_name = "raw-zmq #2";
  auto pp = run_pingpong(raw_zmq_pingpong(), o);
  auto pp2 = run_pingpong(raw_zmq_pingpong(), o);
  check(pp.has_value(), pp ? "pingpong spin" : pp.error());
  check(pp2.has_value(), pp2 ? "pingpong spin #2" : pp2.error());
  auto tp = run_throughput(raw_zmq_throughput(), o);
  auto tp2 = run_throughput(raw_zmq_throughput(), o);
  check(tp.has_value() && tp->lost == 0, tp ? fmt::format("throughput, lost {}", tp->lost) : tp.error());
  check(tp2.has_value() && tp2->lost == 0, tp2 ? fmt::format("throughput #2, lost {}", tp2->lost) : tp2.error());
  if (pp) rep.base_pp = *pp;
  if (pp2) rep.rill_pp = *pp2;
  if (tp) rep.base_tp = *tp;
  if (tp2) rep.rill_tp = *tp2;
  fmt::print("\n{}\n", summary_text(rep));

  PerfOptions ob = o;
  ob.idle = Idle::block;
  auto block = run_pingpong(raw_zmq_pingpong(), ob);
  check(block.has_value(), block ? "pingpong block" : block.error());
  auto tpb = run_throughput(raw_zmq_throughput(), ob);
  check(tpb.has_value() && tpb->lost == 0, tpb ? fmt::format("throughput block, lost {}", tpb->lost) : tpb.error());
  if (block && tpb) {
    Report rb;
    rb.opts = ob;
    rb.baseline_name = "raw-zmq";
    rb.base_pp = *block;
    rb.base_tp = *tpb;
    rb.subject_name = "-";
    fmt::print("\n{}\n", summary_text(rb));
  }

  if (auto j = write_json(rep, o.json_path); !j) check(false, j.error());
  if (auto s = write_svg(rep, o.plot_path); !s) check(false, s.error());
  fmt::print("{} failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
