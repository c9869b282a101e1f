// Count and global windows: both need a key's events in event-time order, so events wait
// in a buffer until the watermark passes them and are then folded in (time, source,
// sequence) order, which makes the result independent of arrival order.
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "stream/state_io.hpp"
#include "stream/window_store.hpp"

namespace rill::stream::detail {
namespace {

class OrderedWindows final : public WindowStore {
 public:
  explicit OrderedWindows(const StoreParams& p)
      : m_count(p.spec.kind == WindowKind::count ? p.spec.count : 0),
        m_aggregate(*p.aggregate),
        m_emitter(*p.emitter) {}

  void add(const Event& e, TimeMs watermark) override {
    if (e.time >= watermark) {
      m_pending.emplace(std::tuple{e.time, e.source, e.sequence}, std::pair{e.key, e.value});
      return;
    }
    // Late, within the allowed lateness (global windows only: see takes_late()): the row
    // downstream already holds is corrected at once.
    WindowState& w = window(e.key, e.time);
    w.acc->add(e.value);
    ++w.count;
    m_emitter.changed(e.key, w, max_time);
  }

  bool advance(TimeMs watermark) override {
    bool emitted = false;
    std::unordered_set<std::string> touched;  // global windows: keys to emit once this round
    while (!m_pending.empty() && std::get<0>(m_pending.begin()->first) < watermark) {
      auto node = m_pending.extract(m_pending.begin());
      const TimeMs t = std::get<0>(node.key());
      const std::string& key = node.mapped().first;
      WindowState& w = window(key, t);
      w.acc->add(node.mapped().second);
      ++w.count;
      w.end = m_count > 0 ? t + 1 : max_time;
      if (m_emitter.mode() == Emit::every_change) {
        m_emitter.changed(key, w, min_time);  // min_time: "not closed", emitted as a change
        emitted = true;
      }
      if (m_count > 0 && w.count == m_count) {  // full: final row, then a fresh window
        m_emitter.close(key, w);
        m_keys.erase(key);
        emitted = true;
      } else if (m_count == 0 && m_emitter.mode() == Emit::final_only) {
        touched.insert(key);
      }
    }
    for (const auto& key : touched) {
      WindowState& w = m_keys.at(key);
      m_emitter.changed(key, w, max_time);  // as of W every event before it is in: emit
      emitted = true;
    }
    return emitted;
  }

  [[nodiscard]] std::size_t open_windows() const override { return m_keys.size() + m_pending.size(); }
  [[nodiscard]] bool takes_late() const override { return m_count == 0; }

  [[nodiscard]] bool save(StateWriter& out) const override {
    out.u64(m_pending.size());
    for (const auto& [at, kv] : m_pending) {
      out.i64(std::get<0>(at));
      out.u64(std::get<1>(at));
      out.u64(std::get<2>(at));
      out.str(kv.first);
      out.f64(kv.second);
    }
    out.u64(m_keys.size());
    for (const auto& [key, w] : m_keys) {
      out.str(key);
      if (!save_window(out, w)) return false;
    }
    return true;
  }
  [[nodiscard]] bool load(StateReader& in, TimeMs) override {
    const std::uint64_t pending = in.count(40);
    for (std::uint64_t i = 0; i < pending && in.ok(); ++i) {
      const TimeMs t = in.i64();
      const std::uint64_t source = in.u64();
      const std::uint64_t seq = in.u64();
      std::string key(in.str());
      m_pending.emplace(std::tuple{t, source, seq}, std::pair{std::move(key), in.f64()});
    }
    const std::uint64_t keys = in.count(35);
    for (std::uint64_t i = 0; i < keys && in.ok(); ++i) {
      std::string key(in.str());
      WindowState w;
      if (!load_window(in, w, key, m_aggregate) || w.acc == nullptr || (m_count > 0 && w.count >= m_count)) {
        in.fail();
        break;
      }
      if (!m_keys.try_emplace(std::move(key), std::move(w)).second) in.fail();
    }
    return in.ok();
  }

 private:
  WindowState& window(const std::string& key, TimeMs t) {
    auto [it, fresh] = m_keys.try_emplace(key);
    WindowState& w = it->second;
    if (fresh) {
      w.start = m_count > 0 ? t : min_time;
      w.end = m_count > 0 ? t + 1 : max_time;
      w.acc = m_aggregate();
    }
    return w;
  }

  std::uint64_t m_count;  // count windows: events per window; 0: the global window
  const Aggregate& m_aggregate;
  Emitter& m_emitter;
  std::unordered_map<std::string, WindowState> m_keys;  // the open window of each key
  std::multimap<std::tuple<TimeMs, std::uint64_t, std::uint64_t>, std::pair<std::string, double>> m_pending;
};

}  // namespace

std::unique_ptr<WindowStore> make_ordered_windows(const StoreParams& p) {
  return std::make_unique<OrderedWindows>(p);
}

}  // namespace rill::stream::detail
