// rill perf TRANSPORT: latency and throughput of rill beside the raw transport, one run.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "args.hpp"
#include "perf_kit.hpp"
#include "perf_rill.hpp"
#ifdef RILL_WITH_UDP
#include "rill/udp_auth_key.hpp"
#endif

namespace rill::cli {

namespace {

// The command, for usage_error's hint; its synopsis and options are on its page in help.cpp.
constexpr std::string_view perf_usage = "rill perf";

// --auth: a fresh group key in a private temporary directory, removed at the end.
class TempKey {
 public:
  TempKey() {
    std::string tmpl = std::string(std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "/tmp") + "/rill-perf-XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) m_dir = tmpl;
  }
  ~TempKey() {
    std::error_code ec;
    if (!m_dir.empty()) std::filesystem::remove_all(m_dir, ec);
  }
  TempKey(const TempKey&) = delete;
  TempKey& operator=(const TempKey&) = delete;
  [[nodiscard]] std::string path() const { return m_dir + "/group.key"; }
  [[nodiscard]] bool made() const { return !m_dir.empty(); }

 private:
  std::string m_dir;
};

}  // namespace

int cmd_perf(int argc, char** argv) {
  const std::set<std::string> valued{"size", "count", "throughput-count", "warmup", "rate", "placement", "idle",
                                     "base-port", "json", "plot", "batch", "repeat", "reliable", "mtu"};
  if (wants_help(argc, argv, valued)) return print_help("perf");
  auto args = Args::parse(argc, argv, valued, {"skip-throughput", "auth"});
  if (!args) return usage_error(args.error().detail, perf_usage);
  if (args->positional().size() != 1) return usage_error("perf needs a TRANSPORT", perf_usage);
  perf::PerfOptions o;
  o.transport = args->positional()[0];
  if (o.transport == "http") {
    return usage_error_no_hint(
        "http is measured beside nginx with wrk by perf/http_perf.sh (run it from the source tree)");
  }
  if (o.transport != "tcp" && o.transport != "udp" && o.transport != "shm") {
    return usage_error_no_hint("perf supports tcp, udp and shm (http: see perf/http_perf.sh)");
  }
  // udp: the mode and mtu go into the endpoints' query; the baseline is a raw UDP socket pair.
  const auto reliable = args->text("reliable").value_or("1");
  if (reliable != "0" && reliable != "1") return usage_error("--reliable must be 0 or 1", perf_usage);
  auto mtu = args->number("mtu", 1500);
  if (!mtu) return usage_error(mtu.error().detail, perf_usage);
  const bool udp = o.transport == "udp";
  const std::string udp_query = "reliable=" + reliable + "&mtu=" + std::to_string(*mtu);
  // --auth (udp): rill with authenticated datagrams against rill without, in the same run.
  const bool auth = args->has("auth");
  if (auth && !udp) return usage_error("--auth is for udp only (tcp: curve_key on the endpoints)", perf_usage);
  TempKey key;
  std::string auth_query;
#ifdef RILL_WITH_UDP
  if (auth) {
    if (!key.made()) return usage_error_no_hint("perf --auth: cannot make a temporary directory for the key");
    if (auto id = write_udp_auth_key(key.path()); !id) {
      std::fprintf(stderr, "rill: %s\n", id.error().message().c_str());
      return exit_runtime;
    }
    auth_query = udp_query + "&auth_key_file=" + key.path();
  }
#endif
  auto size = args->number("size", o.size);
  auto count = args->number("count", 20000);
  auto tcount = args->number("throughput-count", 1000000);
  auto warmup = args->number("warmup", 2000);
  auto port = args->number("base-port", o.base_port);
  auto rate = args->real("rate", 0);
  auto batch = args->number("batch", 1);
  auto repeat = args->number("repeat", 3);
  for (const auto* r : {&size, &count, &tcount, &warmup, &port, &batch, &repeat}) {
    if (!*r) return usage_error(r->error().detail, perf_usage);
  }
  if (!rate) return usage_error(rate.error().detail, perf_usage);
  if (*port == 0 || *port > 65000) return usage_error("--base-port must be between 1 and 65000", perf_usage);
  o.size = *size;
  o.count = *count;
  o.throughput_count = *tcount;
  o.warmup = *warmup;
  o.rate = *rate;
  o.base_port = static_cast<std::uint16_t>(*port);
  if (*batch == 0) return usage_error("--batch must be at least 1", perf_usage);
  o.batch = *batch;
  const auto placement = args->text("placement").value_or("cross");
  if (placement == "cross") {
    o.placement = perf::Placement::cross;
  } else if (placement == "same") {
    o.placement = perf::Placement::same;
  } else if (placement == "none") {
    o.placement = perf::Placement::none;
  } else {
    return usage_error("--placement must be cross, same or none", perf_usage);
  }
  const auto idle = args->text("idle").value_or("spin");
  if (idle != "spin" && idle != "block") return usage_error("--idle must be spin or block", perf_usage);
  o.idle = idle == "spin" ? perf::Idle::spin : perf::Idle::block;
  o.json_path = args->text("json").value_or("");
  o.plot_path = args->text("plot").value_or("");

  perf::Report report;
  report.opts = o;
  const bool shm = o.transport == "shm";
  report.baseline_name = auth ? "rill-plain" : udp ? "raw-udp" : shm ? "raw-shm" : "raw-zmq";
  if (auth) report.subject_name = "rill-auth";
  // Made afresh for every run: the shm baseline maps its shared lines before each fork.
  const auto base_pingpong = [&] {
    if (auth) return rill_pingpong(udp_query);
    return udp ? perf::raw_udp_pingpong() : shm ? perf::raw_shm_pingpong() : perf::raw_zmq_pingpong();
  };
  const auto base_throughput = [&] {
    if (auth) return rill_throughput(udp_query);
    return udp ? perf::raw_udp_throughput() : shm ? perf::raw_shm_throughput() : perf::raw_zmq_throughput();
  };
  const auto rill_pingpong_runner = shm ? rill_shm_pingpong() : rill_pingpong(auth ? auth_query : udp_query);
  const auto rill_throughput_runner = shm ? rill_shm_throughput() : rill_throughput(auth ? auth_query : udp_query);
  // Baseline and rill alternate in rounds on the same placement and their samples are
  // pooled, so the machine's drift (large on a shared VM) hits both alike.
  const auto rounds = std::max<std::uint64_t>(1, *repeat);
  perf::PerfOptions round = o;
  round.count = std::max<std::size_t>(1, o.count / rounds);
  round.warmup = std::max<std::size_t>(1, o.warmup / rounds);
  for (std::uint64_t i = 0; i < rounds; ++i) {
    auto base_pp = perf::run_pingpong(base_pingpong(), round);
    auto rill_pp = perf::run_pingpong(rill_pingpong_runner, round);
    if (!base_pp || !rill_pp) {
      std::fprintf(stderr, "rill: perf ping-pong failed: %s\n", (!base_pp ? base_pp.error() : rill_pp.error()).c_str());
      return exit_runtime;
    }
    report.base_pp.placement_used = base_pp->placement_used;
    report.rill_pp.placement_used = rill_pp->placement_used;
    report.base_pp.samples_ns.insert(report.base_pp.samples_ns.end(), base_pp->samples_ns.begin(), base_pp->samples_ns.end());
    report.rill_pp.samples_ns.insert(report.rill_pp.samples_ns.end(), rill_pp->samples_ns.begin(), rill_pp->samples_ns.end());
  }
  report.base_pp.rtt = perf::percentiles_us(report.base_pp.samples_ns);
  report.rill_pp.rtt = perf::percentiles_us(report.rill_pp.samples_ns);
  report.opts.count = report.rill_pp.samples_ns.size();
  if (!args->has("skip-throughput")) {
    // Throughput swings from run to run on a shared VM: alternate the two and keep
    // each one's median, so a lucky or unlucky run does not decide the ratio.
    std::vector<perf::ThroughputResult> base_runs, rill_runs;
    for (std::uint64_t i = 0; i < std::max<std::uint64_t>(1, *repeat); ++i) {
      auto base_tp = perf::run_throughput(base_throughput(), o);
      auto rill_tp = perf::run_throughput(rill_throughput_runner, o);
      if (!base_tp || !rill_tp) {
        std::fprintf(stderr, "rill: perf throughput failed: %s\n", (!base_tp ? base_tp.error() : rill_tp.error()).c_str());
        return exit_runtime;
      }
      std::fprintf(stderr, "throughput run %llu: %s %.0f msgs/s (lost %llu), %s %.0f msgs/s (lost %llu)\n",
                   static_cast<unsigned long long>(i + 1), report.baseline_name.c_str(), base_tp->msgs_per_s,
                   static_cast<unsigned long long>(base_tp->lost), report.subject_name.c_str(), rill_tp->msgs_per_s,
                   static_cast<unsigned long long>(rill_tp->lost));
      base_runs.push_back(*base_tp);
      rill_runs.push_back(*rill_tp);
    }
    const auto median = [](std::vector<perf::ThroughputResult> runs) {
      std::sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) { return a.msgs_per_s < b.msgs_per_s; });
      return runs[runs.size() / 2];
    };
    report.base_tp = median(base_runs);
    report.rill_tp = median(rill_runs);
  }
  std::fputs(perf::summary_text(report).c_str(), stdout);
  if (!o.json_path.empty()) {
    if (auto w = perf::write_json(report, o.json_path); !w) {
      std::fprintf(stderr, "rill: %s\n", w.error().c_str());
      return exit_runtime;
    }
  }
  if (!o.plot_path.empty()) {
    if (auto w = perf::write_svg(report, o.plot_path); !w) {
      std::fprintf(stderr, "rill: %s\n", w.error().c_str());
      return exit_runtime;
    }
  }
  return exit_ok;
}

}  // namespace rill::cli
