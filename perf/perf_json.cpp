// The `rill perf --json` file, in the exact layout DESIGN.md fixes, written by hand:
// one flat object does not justify a JSON library, but every number must stay valid
// JSON, so NaN and infinities (a run that did not happen, a ratio over zero) are null.
#include "perf_detail.hpp"
#include "perf_kit.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <spdlog/fmt/fmt.h>

namespace rill::perf {
namespace {

std::string num(double v, int decimals) {
  if (!std::isfinite(v)) return "null";
  return fmt::format("{:.{}f}", v, decimals);
}

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// "cross", "same" or "none": the word a script can switch on; degraded text goes to a note.
std::string_view placement_word(std::string_view used) { return used.substr(0, used.find(' ')); }

}  // namespace

std::expected<void, std::string> write_json(const Report& r, const std::string& path) {
  const Percentiles& s = r.rill_pp.rtt;
  const Percentiles& b = r.base_pp.rtt;
  const std::string_view used = r.rill_pp.placement_used.empty() ? detail::placement_name(r.opts.placement)
                                                                 : std::string_view(r.rill_pp.placement_used);
  const double rill_rate = r.rill_tp.msgs_per_s;
  const double base_rate = r.base_tp.msgs_per_s;

  std::string j = "{";
  j += fmt::format("\"transport\":{},\"size\":{},\"count\":{},\"mode\":\"pingpong\",", quoted(r.opts.transport),
                   r.opts.size, s.n > 0 ? s.n : r.opts.count);
  j += fmt::format("\"rtt_us\":{{\"p50\":{},\"p90\":{},\"p99\":{},\"p999\":{},\"max\":{}}},", num(s.p50, 3),
                   num(s.p90, 3), num(s.p99, 3), num(s.p999, 3), num(s.max, 3));
  j += fmt::format("\"throughput_msgs_s\":{},", num(rill_rate, 0));
  j += fmt::format("\"baseline\":{{\"name\":{},\"rtt_us\":{{\"p50\":{},\"p99\":{}}},\"throughput_msgs_s\":{}}},",
                   quoted(r.baseline_name), num(b.p50, 3), num(b.p99, 3), num(base_rate, 0));
  // Extra fields, allowed after the fixed ones.
  j += fmt::format("\"placement\":{},\"idle\":{},", quoted(placement_word(used)), quoted(detail::idle_name(r.opts.idle)));
  if (placement_word(used).size() != used.size()) j += fmt::format("\"placement_note\":{},", quoted(used));
  j += fmt::format("\"ratio_p50\":{},\"ratio_throughput\":{},", num(detail::ratio(s.p50, b.p50), 4),
                   num(detail::ratio(rill_rate, base_rate), 4));
  j += fmt::format("\"batch\":{},", r.opts.batch);
  j += fmt::format("\"throughput_count\":{},\"lost\":{},\"baseline_lost\":{}", r.opts.throughput_count,
                   r.rill_tp.lost, r.base_tp.lost);
  j += "}\n";

  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "w"), &std::fclose);
  if (!f) return std::unexpected(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  if (std::fwrite(j.data(), 1, j.size(), f.get()) != j.size() || std::fflush(f.get()) != 0)
    return std::unexpected(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  return {};
}

}  // namespace rill::perf
