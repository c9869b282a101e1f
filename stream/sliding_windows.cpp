// Sliding (rolling) windows: for each event time t of a key, the aggregate of that key's
// events in (t - size, t]; the window is [t - size + 1, t + 1) and closes when W > t.
// Events are kept (not only accumulators) because each window sees a different subset.
#include <map>
#include <unordered_map>

#include "stream/state_io.hpp"
#include "stream/window_store.hpp"

namespace rill::stream::detail {
namespace {

class SlidingWindows final : public WindowStore {
 public:
  explicit SlidingWindows(const StoreParams& p)
      : m_size(p.spec.size_ms), m_lateness(p.lateness_ms), m_aggregate(*p.aggregate), m_emitter(*p.emitter) {}

  void add(const Event& e, TimeMs watermark) override {
    Key& k = m_keys[e.key];
    k.events.emplace(e.time, e.value);
    ++m_events;
    m_free_events.emplace(saturating_add(saturating_add(e.time, m_size), m_lateness), e.key, e.time);
    auto [it, fresh] = k.windows.try_emplace(e.time);
    if (fresh) {
      WindowState& w = it->second;
      w.start = e.time - m_size + 1;
      w.end = e.time + 1;
      if (w.end > watermark) m_close.emplace(w.end, e.key, e.time);
      m_free.emplace(saturating_add(w.end, m_lateness), e.key, e.time);
    }
    // The windows that now contain the event: those of times t' in [t, t + size).
    for (auto w = it; w != k.windows.end() && w->first < e.time + m_size; ++w) {
      if (m_emitter.mode() == Emit::every_change || w->second.end <= watermark) {
        recompute(k, w->second);
        m_emitter.changed(e.key, w->second, watermark);
      }
    }
  }

  bool advance(TimeMs watermark) override {
    bool closed = false;
    while (!m_close.empty() && std::get<0>(*m_close.begin()) <= watermark) {
      auto node = m_close.extract(m_close.begin());
      const auto& [end, key, t] = node.value();
      Key& k = m_keys[key];
      WindowState& w = k.windows.at(t);
      if (!w.emitted) recompute(k, w);
      m_emitter.close(key, w);
      closed = true;
    }
    while (!m_free.empty() && std::get<0>(*m_free.begin()) <= watermark) {
      auto node = m_free.extract(m_free.begin());
      const auto& [at, key, t] = node.value();
      m_keys[key].windows.erase(t);
      drop_if_empty(key);
    }
    // An event at u is in windows t < u + size; once no window that late events could still
    // create or correct (t >= W - lateness) can hold it, it goes.
    while (!m_free_events.empty() && std::get<0>(*m_free_events.begin()) <= watermark) {
      auto node = m_free_events.extract(m_free_events.begin());
      const auto& [at, key, u] = node.value();
      Key& k = m_keys[key];
      auto range = k.events.equal_range(u);
      m_events -= static_cast<std::size_t>(std::distance(range.first, range.second));
      k.events.erase(range.first, range.second);
      drop_if_empty(key);
    }
    return closed;
  }

  [[nodiscard]] std::size_t open_windows() const override { return m_free.size() + m_events; }

  [[nodiscard]] bool save(StateWriter& out) const override {
    out.u64(m_keys.size());
    for (const auto& [key, k] : m_keys) {
      out.str(key);
      out.u64(k.events.size());
      for (const auto& [t, v] : k.events) {
        out.i64(t);
        out.f64(v);
      }
      out.u64(k.windows.size());
      for (const auto& [t, w] : k.windows) {
        if (!save_window(out, w)) return false;
      }
    }
    return true;
  }
  [[nodiscard]] bool load(StateReader& in, TimeMs watermark) override {
    const std::uint64_t n = in.count(9);
    for (std::uint64_t i = 0; i < n && in.ok(); ++i) {
      const std::string key(in.str());
      Key& k = m_keys[key];
      const std::uint64_t events = in.count(16);
      for (std::uint64_t j = 0; j < events && in.ok(); ++j) {
        const TimeMs t = in.i64();
        k.events.emplace(t, in.f64());
        ++m_events;
        m_free_events.emplace(saturating_add(saturating_add(t, m_size), m_lateness), key, t);
      }
      const std::uint64_t windows = in.count(27);
      for (std::uint64_t j = 0; j < windows && in.ok(); ++j) {
        WindowState w;
        if (!load_window(in, w, key, m_aggregate) || w.end == min_time) break;
        const TimeMs t = w.end - 1;
        if (w.end > watermark) m_close.emplace(w.end, key, t);
        m_free.emplace(saturating_add(w.end, m_lateness), key, t);
        if (!k.windows.try_emplace(t, std::move(w)).second) in.fail();
      }
    }
    return in.ok();
  }

 private:
  struct Key {
    std::multimap<TimeMs, double> events;
    std::map<TimeMs, WindowState> windows;  // by the event time t that defines each
  };

  void recompute(const Key& k, WindowState& w) {
    w.acc = m_aggregate();
    w.count = 0;
    for (auto it = k.events.lower_bound(w.start); it != k.events.end() && it->first < w.end; ++it) {
      w.acc->add(it->second);
      ++w.count;
    }
  }
  void drop_if_empty(const std::string& key) {
    auto it = m_keys.find(key);
    if (it != m_keys.end() && it->second.events.empty() && it->second.windows.empty()) m_keys.erase(it);
  }

  std::int64_t m_size;
  std::int64_t m_lateness;
  const Aggregate& m_aggregate;
  Emitter& m_emitter;
  std::unordered_map<std::string, Key> m_keys;
  std::size_t m_events = 0;
  TimerSet m_close;        // (t + 1, key, t)
  TimerSet m_free;         // (t + 1 + lateness, key, t)
  TimerSet m_free_events;  // (u + size + lateness, key, u): duplicates of (key, u) collapse
};

}  // namespace

std::unique_ptr<WindowStore> make_sliding_windows(const StoreParams& p) {
  return std::make_unique<SlidingWindows>(p);
}

}  // namespace rill::stream::detail
