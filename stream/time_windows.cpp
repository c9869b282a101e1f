// Tumbling and hopping windows: fixed extents computed from the event time alone.
#include <map>
#include <unordered_map>

#include "stream/state_io.hpp"
#include "stream/window_store.hpp"

namespace rill::stream::detail {
namespace {

// floor(a / b) for b > 0, also for negative a.
TimeMs floor_div(TimeMs a, std::int64_t b) noexcept { return a / b - (a % b != 0 && a < 0 ? 1 : 0); }

class TimeWindows final : public WindowStore {
 public:
  explicit TimeWindows(const StoreParams& p)
      : m_size(p.spec.size_ms),
        m_hop(p.spec.kind == WindowKind::tumbling ? p.spec.size_ms : p.spec.hop_ms),
        m_lateness(p.lateness_ms),
        m_aggregate(*p.aggregate),
        m_emitter(*p.emitter) {}

  void add(const Event& e, TimeMs watermark) override {
    auto& windows = m_keys[e.key];
    // Every window [s, s + size) with s a multiple of hop and s <= t < s + size.
    for (TimeMs s = floor_div(e.time, m_hop) * m_hop; s > e.time - m_size; s -= m_hop) {
      auto [it, fresh] = windows.try_emplace(s);
      WindowState& w = it->second;
      if (fresh) {
        w.start = s;
        w.end = s + m_size;
        w.acc = m_aggregate();
        if (w.end > watermark) m_close.emplace(w.end, e.key, s);
        m_free.emplace(saturating_add(w.end, m_lateness), e.key, s);
      }
      w.acc->add(e.value);
      ++w.count;
      m_emitter.changed(e.key, w, watermark);
    }
  }

  bool advance(TimeMs watermark) override {
    bool closed = false;
    while (!m_close.empty() && std::get<0>(*m_close.begin()) <= watermark) {
      auto node = m_close.extract(m_close.begin());
      const auto& [end, key, start] = node.value();
      m_emitter.close(key, m_keys[key].at(start));
      closed = true;
    }
    while (!m_free.empty() && std::get<0>(*m_free.begin()) <= watermark) {
      auto node = m_free.extract(m_free.begin());
      const auto& [at, key, start] = node.value();
      auto k = m_keys.find(key);
      k->second.erase(start);
      if (k->second.empty()) m_keys.erase(k);
    }
    return closed;
  }

  [[nodiscard]] std::size_t open_windows() const override { return m_free.size(); }

  [[nodiscard]] bool save(StateWriter& out) const override { return save_keyed(out, m_keys); }
  [[nodiscard]] bool load(StateReader& in, TimeMs watermark) override {
    return load_keyed(in, m_keys, m_aggregate, [&](const std::string& key, const WindowState& w) {
      if (w.end > watermark) m_close.emplace(w.end, key, w.start);
      m_free.emplace(saturating_add(w.end, m_lateness), key, w.start);
    });
  }

 private:
  std::int64_t m_size;
  std::int64_t m_hop;
  std::int64_t m_lateness;
  const Aggregate& m_aggregate;
  Emitter& m_emitter;
  KeyedWindows m_keys;
  TimerSet m_close;  // (end, key, start) of windows not yet closed
  TimerSet m_free;   // (end + lateness, key, start) of every window held
};

}  // namespace

std::unique_ptr<WindowStore> make_time_windows(const StoreParams& p) { return std::make_unique<TimeWindows>(p); }

}  // namespace rill::stream::detail
