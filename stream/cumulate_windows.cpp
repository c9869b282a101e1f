// Cumulating windows: within each period [k*size, (k+1)*size) a window grows by `step` at a
// time, [k*size, k*size + j*step) for j = 1..size/step, so one period's partial results come
// out every step (Flink's CUMULATE). The windows of a period share their start: they are kept
// by end.
#include <map>
#include <unordered_map>

#include "stream/state_io.hpp"
#include "stream/window_store.hpp"

namespace rill::stream::detail {
namespace {

TimeMs floor_div(TimeMs a, std::int64_t b) noexcept {
  return a / b - (a % b != 0 && a < 0 ? 1 : 0);
}

class CumulateWindows final : public WindowStore {
 public:
  explicit CumulateWindows(const StoreParams& p)
      : m_size(p.spec.size_ms),
        m_step(p.spec.hop_ms),
        m_lateness(p.lateness_ms),
        m_aggregate(*p.aggregate),
        m_emitter(*p.emitter) {}

  void add(const Event& e, TimeMs watermark) override {
    auto& windows = m_keys[e.key];
    const TimeMs start = floor_div(e.time, m_size) * m_size;
    // Every window of the period that ends after t: ends start + j*step > t.
    for (TimeMs end = start + (floor_div(e.time - start, m_step) + 1) * m_step; end <= start + m_size; end += m_step) {
      auto [it, fresh] = windows.try_emplace(end);
      WindowState& w = it->second;
      if (fresh) {
        w.start = start;
        w.end = end;
        w.acc = m_aggregate();
        arm(e.key, w, watermark);
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
      const auto& [at, key, end] = node.value();
      m_emitter.close(key, m_keys[key].at(end));
      closed = true;
    }
    while (!m_free.empty() && std::get<0>(*m_free.begin()) <= watermark) {
      auto node = m_free.extract(m_free.begin());
      const auto& [at, key, end] = node.value();
      auto k = m_keys.find(key);
      k->second.erase(end);
      if (k->second.empty()) m_keys.erase(k);
    }
    return closed;
  }

  [[nodiscard]] std::size_t open_windows() const override { return m_free.size(); }

  [[nodiscard]] bool save(StateWriter& out) const override { return save_keyed(out, m_keys); }

  // save_keyed's layout, read back keyed by end (load_keyed keys by start).
  [[nodiscard]] bool load(StateReader& in, TimeMs watermark) override {
    const std::uint64_t n = in.count(9);
    for (std::uint64_t i = 0; i < n && in.ok(); ++i) {
      std::string key(in.str());
      auto& windows = m_keys[key];
      const std::uint64_t m = in.count(27);
      for (std::uint64_t j = 0; j < m && in.ok(); ++j) {
        WindowState w;
        if (!load_window(in, w, key, m_aggregate) || w.acc == nullptr || w.end - w.start > m_size || w.end <= w.start) {
          in.fail();
          break;
        }
        auto [it, fresh] = windows.try_emplace(w.end, std::move(w));
        if (!fresh) in.fail();  // two windows of a key with one end
        if (in.ok()) arm(key, it->second, watermark);
      }
      if (windows.empty()) m_keys.erase(key);
    }
    return in.ok();
  }

 private:
  void arm(const std::string& key, const WindowState& w, TimeMs watermark) {
    if (w.end > watermark) m_close.emplace(w.end, key, w.end);
    m_free.emplace(saturating_add(w.end, m_lateness), key, w.end);
  }

  std::int64_t m_size;
  std::int64_t m_step;
  std::int64_t m_lateness;
  const Aggregate& m_aggregate;
  Emitter& m_emitter;
  KeyedWindows m_keys;  // key -> end -> window
  TimerSet m_close;     // (end, key, end) of windows not yet closed
  TimerSet m_free;      // (end + lateness, key, end) of every window held
};

}  // namespace

std::unique_ptr<WindowStore> make_cumulate_windows(const StoreParams& p) {
  return std::make_unique<CumulateWindows>(p);
}

}  // namespace rill::stream::detail
