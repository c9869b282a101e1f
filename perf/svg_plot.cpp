// Latency percentile plot (`rill perf --plot FILE.svg`), hand-written SVG so the kit
// has no plotting dependency. The x axis is log10(1/(1-p)): every "nine" gets the same
// width, which is where tail latency differences between rill and the baseline show.
#include "perf_detail.hpp"
#include "perf_kit.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <spdlog/fmt/fmt.h>

namespace rill::perf {
namespace {

constexpr double width = 960;
constexpr double height = 560;
constexpr double left = 80;
constexpr double right = width - 30;
constexpr double top = 86;
constexpr double bottom = height - 62;
constexpr int curve_points = 200;

struct Curve {
  std::string name;
  std::string colour;
  std::vector<std::pair<double, double>> points;  // (log10(1/(1-p)), RTT us)
  Percentiles pct{};
  double x_end = 0;  // where this series' max sits on the x axis
};

// ~200 points spaced evenly in log10(1/(1-p)) from p = 0 (the minimum) to p = 1 - 1/n,
// which with the index floor(p * n) is exactly the largest sample.
Curve make_curve(std::string name, std::string colour, const std::vector<std::uint64_t>& samples_ns) {
  Curve c;
  c.name = std::move(name);
  c.colour = std::move(colour);
  if (samples_ns.empty()) return c;
  std::vector<std::uint64_t> sorted = samples_ns;
  std::sort(sorted.begin(), sorted.end());
  const auto n = sorted.size();
  c.pct = percentiles_us(sorted);
  c.x_end = std::log10(static_cast<double>(n));
  for (int i = 0; i <= curve_points; ++i) {
    const double x = c.x_end * i / curve_points;
    const double p = 1.0 - std::pow(10.0, -x);
    auto idx = static_cast<std::size_t>(p * static_cast<double>(n));
    if (i == curve_points || idx >= n) idx = n - 1;  // float rounding must not miss the max
    c.points.emplace_back(x, static_cast<double>(sorted[idx]) / 1000.0);
  }
  return c;
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (const char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += ch;
    }
  }
  return out;
}


std::string fmt_us(double v) {
  if (!std::isfinite(v)) return "-";
  return v >= 100 ? fmt::format("{:.0f}", v) : v >= 10 ? fmt::format("{:.1f}", v) : fmt::format("{:.2f}", v);
}

std::string fmt_rate(double r) {
  if (!std::isfinite(r)) return "not run";
  if (r >= 1e6) return fmt::format("{:.2f} M msgs/s", r / 1e6);
  return fmt::format("{:.0f} k msgs/s", r / 1e3);
}

// Label of p = 1 - 10^-k: 90%, 99%, 99.9%, 99.99%, ...
std::string nines_label(int k) {
  if (k == 1) return "90%";
  if (k == 2) return "99%";
  return fmt::format("99.{:9<{}}%", "", k - 2);  // k - 2 more nines after the point
}

// The y axis is logarithmic: the tail (p99.9, max) is often 10-100x the median, and on
// a linear axis it would flatten the part of the curve where the two series differ.
class Plot {
 public:
  Plot(double x_max, double y_min, double y_max)
      : m_x_max(x_max), m_log_min(std::log10(y_min)), m_log_span(std::log10(y_max) - std::log10(y_min)) {}
  double px(double x) const { return left + (right - left) * x / m_x_max; }
  double py(double y) const {
    const double v = std::clamp((std::log10(std::max(y, 1e-9)) - m_log_min) / m_log_span, 0.0, 1.0);
    return bottom - (bottom - top) * v;
  }

 private:
  double m_x_max;
  double m_log_min;
  double m_log_span;
};

void axes(std::string& svg, const Plot& plot, double x_max, double y_min, double y_max) {
  // Gridlines at 1, 2 and 5 times each power of ten.
  for (double decade = y_min; decade < y_max * 1.001; decade *= 10) {
    for (const double m : {1.0, 2.0, 5.0}) {
      const double y = decade * m;
      if (y > y_max * 1.001) break;
      const int decimals = y >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(y) - 1e-9));
      svg += fmt::format(R"(<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="{}"/>)"
                         "\n",
                         left, plot.py(y), right, plot.py(y), m == 1.0 ? "#ccc" : "#eee");
      svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" text-anchor="end" dominant-baseline="middle">{:.{}f}</text>)"
                         "\n",
                         left - 8, plot.py(y), y, decimals);
    }
  }
  // Percentile ticks: 0%, 50%, then one per "nine", and the max at the end of the axis.
  std::vector<std::pair<double, std::string>> ticks{{0.0, "0%"}, {std::log10(2.0), "50%"}};
  for (int k = 1; k + 0.2 < x_max; ++k) ticks.emplace_back(k, nines_label(k));
  ticks.emplace_back(x_max, "max");
  for (const auto& [x, label] : ticks) {
    svg += fmt::format(R"(<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="#ddd"/>)"
                       "\n",
                       plot.px(x), top, plot.px(x), bottom);
    svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" text-anchor="middle">{}</text>)"
                       "\n",
                       plot.px(x), bottom + 20, label);
  }
  svg += fmt::format(R"(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#444"/>)"
                     "\n",
                     left, top, right - left, bottom - top);
  svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" text-anchor="middle">percentile (log scale of 1/(1-p))</text>)"
                     "\n",
                     (left + right) / 2, bottom + 44);
  svg += fmt::format(R"svg(<text x="20" y="{:.1f}" text-anchor="middle" transform="rotate(-90 20 {:.1f})">RTT (µs, log scale)</text>)svg"
                     "\n",
                     (top + bottom) / 2, (top + bottom) / 2);
}

void series(std::string& svg, const Plot& plot, const Curve& c) {
  std::string pts;
  for (const auto& [x, y] : c.points) pts += fmt::format("{:.1f},{:.1f} ", plot.px(x), plot.py(y));
  svg += fmt::format(R"(<polyline fill="none" stroke="{}" stroke-width="2" stroke-linejoin="round" points="{}"/>)"
                     "\n",
                     c.colour, pts);
  const auto& [mx, my] = c.points.back();
  svg += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="3.5" fill="{}"/>)"
                     "\n",
                     plot.px(mx), plot.py(my), c.colour);
}

void legend(std::string& svg, const std::vector<Curve>& curves) {
  std::vector<std::string> lines;
  std::size_t longest = 0;
  for (const auto& c : curves) {
    lines.push_back(fmt::format("{}: p50 {} · p99 {} · p99.9 {} · max {} µs (n={})", c.name, fmt_us(c.pct.p50),
                                fmt_us(c.pct.p99), fmt_us(c.pct.p999), fmt_us(c.pct.max), c.pct.n));
    longest = std::max(longest, lines.back().size());
  }
  const double x = left + 14;
  const double y = top + 14;
  svg += fmt::format(R"(<rect x="{}" y="{}" width="{:.0f}" height="{}" fill="white" fill-opacity="0.9" stroke="#999"/>)"
                     "\n",
                     x, y, 44 + 6.6 * static_cast<double>(longest), 10 + 22 * curves.size());
  for (std::size_t i = 0; i < curves.size(); ++i) {
    const double ly = y + 19 + 22 * static_cast<double>(i);
    svg += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="3"/>)"
                       "\n",
                       x + 8, ly - 4, x + 32, ly - 4, curves[i].colour);
    svg += fmt::format(R"(<text x="{}" y="{}">{}</text>)"
                       "\n",
                       x + 38, ly, xml_escape(lines[i]));
  }
}

}  // namespace

std::expected<void, std::string> write_svg(const Report& r, const std::string& path) {
  std::vector<Curve> curves;
  if (!r.rill_pp.samples_ns.empty()) curves.push_back(make_curve(r.subject_name, "#1f77b4", r.rill_pp.samples_ns));
  if (!r.base_pp.samples_ns.empty()) curves.push_back(make_curve(r.baseline_name, "#e8710a", r.base_pp.samples_ns));
  if (curves.empty()) return std::unexpected(std::string("no RTT samples to plot"));

  double x_max = 0.5;  // keeps the 50% tick inside the axis even for tiny runs
  double y_hi = 0;
  double y_lo = std::numeric_limits<double>::infinity();
  for (const auto& c : curves) {
    x_max = std::max(x_max, c.x_end);
    y_hi = std::max(y_hi, c.pct.max);
    if (!c.points.empty()) y_lo = std::min(y_lo, c.points.front().second);
  }
  // Whole decades around the data, so the gridlines land on 1, 2, 5 x 10^k.
  const double y_min = std::pow(10.0, std::floor(std::log10(std::max(y_lo, 1e-3))));
  const double y_max = std::max(y_min * 10, std::pow(10.0, std::ceil(std::log10(std::max(y_hi, 1e-3)))));
  const Plot plot(x_max, y_min, y_max);

  const auto& o = r.opts;
  const std::string& used = r.rill_pp.placement_used.empty() ? r.base_pp.placement_used : r.rill_pp.placement_used;
  std::string svg = fmt::format(
      R"(<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{0}" height="{1}" viewBox="0 0 {0} {1}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
)",
      width, height);
  svg += fmt::format(R"(<text x="{:.1f}" y="26" text-anchor="middle" font-size="17" font-weight="bold">{}</text>)"
                     "\n",
                     width / 2,
                     xml_escape(fmt::format("Ping-pong RTT percentiles: {} vs {}", r.subject_name, r.baseline_name)));
  svg += fmt::format(R"(<text x="{:.1f}" y="48" text-anchor="middle" font-size="14">{}</text>)"
                     "\n",
                     width / 2,
                     xml_escape(fmt::format("{}, {} B payload, placement {}, idle {}", o.transport, o.size,
                                            used.empty() ? detail::placement_name(o.placement) : used,
                                            detail::idle_name(o.idle))));
  svg += fmt::format(R"(<text x="{:.1f}" y="68" text-anchor="middle" fill="#555">{}</text>)"
                     "\n",
                     width / 2,
                     xml_escape(fmt::format("throughput ({} msgs): {} {}, {} {}", o.throughput_count, r.subject_name,
                                            fmt_rate(r.rill_tp.msgs_per_s), r.baseline_name,
                                            fmt_rate(r.base_tp.msgs_per_s))));
  axes(svg, plot, x_max, y_min, y_max);
  for (const auto& c : curves) series(svg, plot, c);
  legend(svg, curves);
  svg += "</svg>\n";

  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "w"), &std::fclose);
  if (!f) return std::unexpected(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  if (std::fwrite(svg.data(), 1, svg.size(), f.get()) != svg.size() || std::fflush(f.get()) != 0)
    return std::unexpected(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  return {};
}

}  // namespace rill::perf
