// The few lines `rill perf` prints: enough to judge a run without opening the JSON.
#include "perf_detail.hpp"
#include "perf_kit.hpp"

#include <spdlog/fmt/fmt.h>

namespace rill::perf {
namespace {

std::string us(double v) { return std::isfinite(v) ? fmt::format("{:.2f}", v) : "-"; }

std::string rtt_row(std::string_view name, std::size_t width, const Percentiles& p) {
  if (p.n == 0) return fmt::format("  {:<{}} not run\n", name, width);
  return fmt::format("  {:<{}} {:>9} {:>9} {:>9} {:>9} {:>9}\n", name, width, us(p.p50), us(p.p90), us(p.p99),
                     us(p.p999), us(p.max));
}

std::string rate(const ThroughputResult& t) {
  if (!std::isfinite(t.msgs_per_s)) return "not run";
  return fmt::format("{:.0f} msgs/s (lost {})", t.msgs_per_s, t.lost);
}

std::string times(double r) { return std::isfinite(r) ? fmt::format("{:.2f}x", r) : "-"; }

}  // namespace

std::string summary_text(const Report& r) {
  const auto& o = r.opts;
  const std::size_t width = std::max({r.subject_name.size(), r.baseline_name.size(), std::size_t{8}});
  const std::string& used = r.rill_pp.placement_used.empty() ? r.base_pp.placement_used : r.rill_pp.placement_used;
  std::string s = fmt::format("{} perf: {} B payload, {} round trips (+{} warm-up), placement {}, idle {}\n",
                              o.transport, o.size, o.count, o.warmup,
                              used.empty() ? detail::placement_name(o.placement) : used, detail::idle_name(o.idle));
  s += fmt::format("  {:<{}} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "RTT us", width, "p50", "p90", "p99", "p99.9", "max");
  s += rtt_row(r.subject_name, width, r.rill_pp.rtt);
  s += rtt_row(r.baseline_name, width, r.base_pp.rtt);
  s += fmt::format("  ratio {}/{}: p50 {}, p99 {}, p99.9 {}\n", r.subject_name, r.baseline_name,
                   times(detail::ratio(r.rill_pp.rtt.p50, r.base_pp.rtt.p50)),
                   times(detail::ratio(r.rill_pp.rtt.p99, r.base_pp.rtt.p99)),
                   times(detail::ratio(r.rill_pp.rtt.p999, r.base_pp.rtt.p999)));
  if (o.batch > 1) s += fmt::format("  {} throughput run batches {} messages per frame (--batch)\n", r.subject_name, o.batch);
  s += fmt::format("  throughput ({} x {} B): {} {}, {} {}, ratio {}\n", o.throughput_count, o.size, r.subject_name,
                   rate(r.rill_tp), r.baseline_name, rate(r.base_tp),
                   times(detail::ratio(r.rill_tp.msgs_per_s, r.base_tp.msgs_per_s)));
  return s;
}

}  // namespace rill::perf
