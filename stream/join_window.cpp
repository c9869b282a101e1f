// Window join: each record is copied into every tumbling/hopping window it belongs to, per
// key and side; when the watermark passes a window's end its key groups emit their cross
// product and the window is freed.
#include <algorithm>

#include "stream/join_store.hpp"
#include "stream/state_io.hpp"

namespace rill::stream::detail {

namespace {

// floor(a / b) for b > 0, also for negative a (event times before the epoch).
TimeMs floor_div(TimeMs a, std::int64_t b) noexcept {
  const TimeMs q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

struct Group {
  std::vector<JoinEvent> left;
  std::vector<JoinEvent> right;
};

class WindowJoin final : public JoinStore {
 public:
  WindowJoin(const JoinOptions& o, JoinEmitter& emitter)
      : m_size(o.window.size_ms),
        m_hop(o.window.kind == WindowKind::hopping ? o.window.hop_ms : o.window.size_ms),
        m_emitter(emitter) {}

  void add(Side side, const JoinEvent& e, TimeMs) override {
    // Windows [s, s + size) with s a multiple of hop and s <= t < s + size, latest first.
    for (TimeMs s = floor_div(e.time, m_hop) * m_hop; s > e.time - m_size; s -= m_hop) {
      Group& g = m_windows[s][e.key];
      (side == Side::left ? g.left : g.right).push_back(e);
      ++m_records;
    }
  }

  bool advance(TimeMs w) override {
    bool closed = false;
    // Windows are ordered by start, so by end too (one size): fire from the front.
    while (!m_windows.empty() && end_of(m_windows.begin()->first) <= w) {
      auto node = m_windows.extract(m_windows.begin());
      fire(node.key(), node.mapped());
      closed = true;
    }
    return closed;
  }

  void save(StateWriter& out) const override {
    out.u64(m_windows.size());
    for (const auto& [start, groups] : m_windows) {
      out.i64(start);
      out.u64(groups.size());
      for (const auto& [key, g] : groups) {
        out.str(key);
        for (const auto* side : {&g.left, &g.right}) {
          out.u64(side->size());
          for (const auto& e : *side) save_event(out, e);
        }
      }
    }
  }

  bool load(StateReader& in) override {
    const std::uint64_t windows = in.count(16);
    for (std::uint64_t i = 0; i < windows && in.ok(); ++i) {
      const TimeMs start = in.i64();
      if (!in_time_range(start) || floor_div(start, m_hop) * m_hop != start || m_windows.contains(start)) in.fail();
      if (!in.ok()) break;
      const std::uint64_t groups = in.count(24);
      auto& keyed = m_windows[start];
      for (std::uint64_t k = 0; k < groups && in.ok(); ++k) {
        const std::string key(in.str());
        Group& g = keyed[key];
        for (auto* side : {&g.left, &g.right}) {
          const std::uint64_t n = in.count(min_event_bytes);
          for (std::uint64_t j = 0; j < n && in.ok(); ++j) {
            side->push_back(load_event(in));
            // A record must lie in its window, under its group's key.
            if (side->back().key != key || side->back().time < start || side->back().time >= end_of(start)) in.fail();
            ++m_records;
          }
        }
      }
    }
    return in.ok();
  }

  [[nodiscard]] std::size_t records() const noexcept override { return m_records; }

 private:
  // Starts and sizes are within in_time_range, so this cannot overflow.
  [[nodiscard]] TimeMs end_of(TimeMs start) const noexcept { return start + m_size; }

  void fire(TimeMs start, std::map<std::string, Group>& groups) {
    const TimeMs end = end_of(start);
    for (auto& [key, g] : groups) {
      m_records -= g.left.size() + g.right.size();
      for (const auto& l : g.left) {
        for (const auto& r : g.right) {
          m_emitter.send(JoinRow{.kind = RowKind::insert,
                                 .key = key,
                                 .left = &l,
                                 .right = &r,
                                 .time = end - 1,
                                 .window_start = start,
                                 .window_end = end});
        }
      }
    }
  }

  std::int64_t m_size;
  std::int64_t m_hop;
  JoinEmitter& m_emitter;
  std::map<TimeMs, std::map<std::string, Group>> m_windows;  // window start -> key -> records
  std::size_t m_records = 0;
};

}  // namespace

std::unique_ptr<JoinStore> make_window_join(const JoinOptions& options, JoinEmitter& emitter) {
  return std::make_unique<WindowJoin>(options, emitter);
}

}  // namespace rill::stream::detail
