// Watermarks: the minimum over live sources of (latest event time - out-of-orderness).
#include "rill/stream/watermark.hpp"

#include <algorithm>

namespace rill::stream {

std::int64_t steady_now_ms() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

WatermarkTracker::WatermarkTracker(WatermarkOptions options) : m_options(std::move(options)) {
  if (!m_options.clock) m_options.clock = steady_now_ms;
}

void WatermarkTracker::observe(std::uint64_t source, TimeMs time) {
  auto& s = m_sources[source];
  s.max_time = std::max(s.max_time, time);
  s.last_seen = m_options.clock();
}

namespace {
// a - b without overflow at the ends of the time range.
TimeMs minus(TimeMs a, std::int64_t b) noexcept { return a < min_time + b ? min_time : a - b; }
TimeMs plus(TimeMs a, std::int64_t b) noexcept { return a > max_time - b ? max_time : a + b; }
}  // namespace

TimeMs WatermarkTracker::update() {
  if (m_sources.empty() || m_sources.size() < m_options.min_sources) return m_watermark;
  const std::int64_t now = m_options.clock();
  const std::int64_t idle = m_options.idle_after.count();
  const std::int64_t bound = m_options.out_of_orderness.count();
  TimeMs low = max_time;
  TimeMs latest = min_time;
  std::int64_t last_seen = 0;
  m_active = 0;
  for (const auto& [id, s] : m_sources) {
    latest = std::max(latest, s.max_time);
    last_seen = std::max(last_seen, s.last_seen);
    if (idle > 0 && now - s.last_seen >= idle) continue;  // idle: not holding W back
    ++m_active;
    low = std::min(low, minus(s.max_time, bound));
  }
  TimeMs next = m_active > 0 ? low : m_watermark;  // all idle: W stays where it is ...
  const std::int64_t quiet = now - last_seen;
  if (m_options.close_when_all_idle.count() > 0 && quiet >= m_options.close_when_all_idle.count()) {
    // ... unless asked to follow the wall clock once everything has been quiet long enough.
    next = std::max(next, plus(latest, quiet));
  }
  m_watermark = std::max(m_watermark, next);
  return m_watermark;
}

std::vector<std::pair<std::uint64_t, TimeMs>> WatermarkTracker::source_times() const {
  std::vector<std::pair<std::uint64_t, TimeMs>> out;
  out.reserve(m_sources.size());
  for (const auto& [id, s] : m_sources) out.emplace_back(id, s.max_time);
  return out;
}

void WatermarkTracker::restore(std::uint64_t source, TimeMs latest) {
  m_sources[source] = Source{.max_time = latest, .last_seen = m_options.clock()};
}

void WatermarkTracker::advance_to(TimeMs to) noexcept { m_watermark = std::max(m_watermark, to); }

}  // namespace rill::stream
