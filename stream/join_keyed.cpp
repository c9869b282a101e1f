// Interval and regular joins: each side's records per key in arrival order, each with a
// deadline (the watermark past which it can match nothing new: time + lower or + upper for an
// interval join, time + ttl for a regular one). An index ordered by deadline frees them as
// the watermark moves, so state stays bounded by the watermark, not by the stream.
#include <algorithm>

#include "stream/join_store.hpp"
#include "stream/state_io.hpp"

namespace rill::stream::detail {

namespace {

struct Stored {
  JoinEvent event;
  bool matched = false;  // left outer join: a matched row replaced the null-padded one
};

class KeyedJoin final : public JoinStore {
 public:
  KeyedJoin(const JoinOptions& o, JoinEmitter& emitter)
      : m_kind(o.kind), m_lower(o.lower.count()), m_upper(o.upper.count()), m_ttl(o.ttl.count()), m_emitter(emitter) {}

  void add(Side side, const JoinEvent& e, TimeMs) override {
    const bool left = side == Side::left;
    auto& other = (left ? m_right : m_left)[e.key];
    bool any = false;
    for (Stored& o : other) {
      const JoinEvent& l = left ? e : o.event;
      const JoinEvent& r = left ? o.event : e;
      if (!matches(l, r)) continue;
      any = true;
      if (!left && m_kind == JoinKind::regular_left_outer && !o.matched) {
        m_emitter.send(padded(RowKind::remove, o.event));  // the null-padded row is replaced
        o.matched = true;
      }
      m_emitter.send(
          JoinRow{.kind = RowKind::insert, .key = e.key, .left = &l, .right = &r, .time = std::max(l.time, r.time)});
    }
    if (left && m_kind == JoinKind::regular_left_outer && !any) m_emitter.send(padded(RowKind::insert, e));
    if (other.empty()) (left ? m_right : m_left).erase(e.key);
    store(side, Stored{.event = e, .matched = any});
  }

  bool advance(TimeMs w) override {
    // Deadlines below W: those records can meet no record still to come.
    while (!m_deadlines.empty() && m_deadlines.begin()->first < w) {
      auto node = m_deadlines.extract(m_deadlines.begin());
      const auto& [side, key] = node.mapped();
      auto& per_key = side == Side::left ? m_left : m_right;
      auto it = per_key.find(key);
      if (it == per_key.end()) continue;  // already freed by an earlier deadline of this key
      const std::size_t before = it->second.size();
      std::erase_if(it->second, [&](const Stored& s) { return deadline(side, s.event.time) < w; });
      m_emitter.expired(before - it->second.size());
      m_records -= before - it->second.size();
      if (it->second.empty()) per_key.erase(it);
    }
    return false;
  }

  void save(StateWriter& out) const override {
    for (const auto* side : {&m_left, &m_right}) {
      out.u64(side->size());
      for (const auto& [key, records] : *side) {
        out.str(key);
        out.u64(records.size());
        for (const Stored& s : records) {
          save_event(out, s.event);
          out.u8(s.matched ? 1 : 0);
        }
      }
    }
  }

  bool load(StateReader& in) override {
    for (Side side : {Side::left, Side::right}) {
      const std::uint64_t keys = in.count(16);
      for (std::uint64_t k = 0; k < keys && in.ok(); ++k) {
        const std::string key(in.str());
        const std::uint64_t n = in.count(min_event_bytes + 1);
        if (n == 0 || (side == Side::left ? m_left : m_right).contains(key)) in.fail();
        for (std::uint64_t j = 0; j < n && in.ok(); ++j) {
          Stored s{.event = load_event(in)};
          const std::uint8_t matched = in.u8();
          if (matched > 1 || s.event.key != key) in.fail();
          s.matched = matched == 1;
          if (in.ok()) store(side, std::move(s));
        }
      }
    }
    return in.ok();
  }

  [[nodiscard]] std::size_t records() const noexcept override { return m_records; }

 private:
  [[nodiscard]] bool matches(const JoinEvent& l, const JoinEvent& r) const noexcept {
    if (m_kind != JoinKind::interval) return true;  // regular joins: equal keys suffice
    return r.time - m_lower <= l.time && l.time <= r.time + m_upper;
  }

  // The watermark past which a record can match nothing that is still to come (not late).
  [[nodiscard]] TimeMs deadline(Side side, TimeMs t) const noexcept {
    if (m_kind == JoinKind::interval) return t + (side == Side::left ? m_lower : m_upper);
    return m_ttl > 0 ? t + m_ttl : max_time;
  }

  [[nodiscard]] static JoinRow padded(RowKind kind, const JoinEvent& l) {
    return JoinRow{.kind = kind, .key = l.key, .left = &l, .right = nullptr, .time = l.time};
  }

  void store(Side side, Stored s) {
    const TimeMs d = deadline(side, s.event.time);
    // One index entry per record: a key's entries all point at its vector, which is swept
    // when the earliest of them comes due.
    if (d != max_time) m_deadlines.emplace(d, std::pair{side, s.event.key});
    (side == Side::left ? m_left : m_right)[s.event.key].push_back(std::move(s));
    ++m_records;
  }

  JoinKind m_kind;
  std::int64_t m_lower;
  std::int64_t m_upper;
  std::int64_t m_ttl;
  JoinEmitter& m_emitter;
  std::map<std::string, std::vector<Stored>> m_left;
  std::map<std::string, std::vector<Stored>> m_right;
  std::multimap<TimeMs, std::pair<Side, std::string>> m_deadlines;
  std::size_t m_records = 0;
};

}  // namespace

std::unique_ptr<JoinStore> make_keyed_join(const JoinOptions& options, JoinEmitter& emitter) {
  return std::make_unique<KeyedJoin>(options, emitter);
}

void save_event(StateWriter& out, const JoinEvent& e) {
  out.str(e.key);
  out.str(e.payload);
  out.i64(e.time);
  out.u64(e.source);
  out.u64(e.sequence);
}

JoinEvent load_event(StateReader& in) {
  JoinEvent e;
  e.key = in.str();
  e.payload = in.str();
  e.time = in.i64();
  e.source = in.u64();
  e.sequence = in.u64();
  if (!in_time_range(e.time)) in.fail();
  return e;
}

}  // namespace rill::stream::detail
