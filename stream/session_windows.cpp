// Session windows: a key's events while the gaps between them stay under `gap`. An event
// whose [t, t + gap) overlaps several sessions bridges them into one.
#include <map>
#include <unordered_map>
#include <vector>

#include "stream/state_io.hpp"
#include "stream/window_store.hpp"

namespace rill::stream::detail {
namespace {

class SessionWindows final : public WindowStore {
 public:
  explicit SessionWindows(const StoreParams& p)
      : m_gap(p.spec.gap_ms), m_lateness(p.lateness_ms), m_aggregate(*p.aggregate), m_emitter(*p.emitter) {}

  void add(const Event& e, TimeMs watermark) override {
    auto& sessions = m_keys[e.key];
    const TimeMs lo = e.time;
    const TimeMs hi = saturating_add(e.time, m_gap);
    // Sessions are disjoint and sorted by start: the ones overlapping [lo, hi) are a run
    // that begins at the last session starting at or before lo (if it reaches past lo).
    auto first = sessions.upper_bound(lo);
    if (first != sessions.begin() && std::prev(first)->second.end > lo) --first;
    auto last = first;
    while (last != sessions.end() && last->second.start < hi) ++last;

    if (first == last) {  // a new session
      WindowState& w = sessions[lo];
      w.start = lo;
      w.end = hi;
      w.acc = m_aggregate();
      fold(e, w);
      arm(e.key, w, watermark);
      m_emitter.changed(e.key, w, watermark);
      return;
    }
    // Extend the earliest session over the event and every other overlapping session.
    auto node = sessions.extract(first++);
    WindowState& w = node.mapped();
    disarm(e.key, w);
    TimeMs start = std::min(w.start, lo);
    TimeMs end = std::max(w.end, hi);
    std::vector<TimeMs> absorbed;
    for (auto it = first; it != last; ++it) end = std::max(end, it->second.end);
    if (start != w.start || end != w.end) m_emitter.retract(w);  // -U before the -D of the others
    for (auto it = first; it != last; ++it) {
      WindowState& other = it->second;
      disarm(e.key, other);
      m_emitter.remove(other);
      w.acc->merge(*other.acc);
      w.count += other.count;
      absorbed.push_back(other.start);
    }
    for (TimeMs s : absorbed) sessions.erase(s);
    w.start = start;
    w.end = end;
    node.key() = start;
    fold(e, w);
    auto it = sessions.insert(std::move(node)).position;
    arm(e.key, it->second, watermark);
    m_emitter.changed(e.key, it->second, watermark);
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
    return load_keyed(in, m_keys, m_aggregate,
                      [&](const std::string& key, const WindowState& w) { arm(key, w, watermark); });
  }

 private:
  static void fold(const Event& e, WindowState& w) {
    w.acc->add(e.value);
    ++w.count;
  }
  void arm(const std::string& key, const WindowState& w, TimeMs watermark) {
    if (w.end > watermark) m_close.emplace(w.end, key, w.start);
    m_free.emplace(saturating_add(w.end, m_lateness), key, w.start);
  }
  void disarm(const std::string& key, const WindowState& w) {
    m_close.erase({w.end, key, w.start});
    m_free.erase({saturating_add(w.end, m_lateness), key, w.start});
  }

  std::int64_t m_gap;
  std::int64_t m_lateness;
  const Aggregate& m_aggregate;
  Emitter& m_emitter;
  KeyedWindows m_keys;
  TimerSet m_close;
  TimerSet m_free;
};

}  // namespace

std::unique_ptr<WindowStore> make_session_windows(const StoreParams& p) {
  return std::make_unique<SessionWindows>(p);
}

}  // namespace rill::stream::detail
