// Windows to and from checkpoint bytes (shared by every window store).
#include "stream/state_io.hpp"
#include "stream/window_store.hpp"

namespace rill::stream::detail {

bool save_window(StateWriter& out, const WindowState& w) {
  out.i64(w.start);
  out.i64(w.end);
  out.u64(w.count);
  std::string acc;
  out.u8(w.acc ? 1 : 0);  // sliding windows have none until first computed
  if (w.acc && !w.acc->save(acc)) return false;
  if (w.acc) out.str(acc);
  out.u8(w.emitted ? 1 : 0);
  if (w.emitted) {
    out.u8(static_cast<std::uint8_t>(w.emitted->kind));
    out.i64(w.emitted->start);
    out.i64(w.emitted->end);
    out.f64(w.emitted->value);
    out.u64(w.emitted->count);
  }
  out.u8(w.retracted ? 1 : 0);
  return true;
}

bool load_window(StateReader& in, WindowState& w, const std::string& key, const Aggregate& aggregate) {
  w.start = in.i64();
  w.end = in.i64();
  w.count = in.u64();
  if (in.u8() == 1) {
    w.acc = aggregate();
    if (!w.acc->load(in.str())) in.fail();
  }
  if (in.u8() == 1) {
    Row r;
    const std::uint8_t kind = in.u8();
    if (kind > static_cast<std::uint8_t>(RowKind::remove)) in.fail();
    r.kind = static_cast<RowKind>(kind);
    r.key = key;
    r.start = in.i64();
    r.end = in.i64();
    r.value = in.f64();
    r.count = in.u64();
    w.emitted = std::move(r);
  }
  w.retracted = in.u8() == 1;
  if (w.end <= w.start && w.end != max_time) in.fail();  // no window is empty or reversed
  return in.ok();
}

bool save_keyed(StateWriter& out, const KeyedWindows& keys) {
  out.u64(keys.size());
  for (const auto& [key, windows] : keys) {
    out.str(key);
    out.u64(windows.size());
    for (const auto& [start, w] : windows) {
      if (!save_window(out, w)) return false;
    }
  }
  return true;
}

bool load_keyed(StateReader& in, KeyedWindows& keys, const Aggregate& aggregate,
                const std::function<void(const std::string&, const WindowState&)>& arm) {
  const std::uint64_t n = in.count(9);
  for (std::uint64_t i = 0; i < n && in.ok(); ++i) {
    std::string key(in.str());
    auto& windows = keys[key];
    const std::uint64_t m = in.count(27);
    for (std::uint64_t j = 0; j < m && in.ok(); ++j) {
      WindowState w;
      if (!load_window(in, w, key, aggregate) || w.acc == nullptr) {
        in.fail();
        break;
      }
      auto [it, fresh] = windows.try_emplace(w.start, std::move(w));
      if (!fresh) in.fail();  // two windows of a key with one start
      if (in.ok()) arm(key, it->second);
    }
    if (windows.empty()) keys.erase(key);
  }
  return in.ok();
}

}  // namespace rill::stream::detail
