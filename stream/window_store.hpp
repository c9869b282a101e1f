// Internal: the per-kind window state behind WindowOperator, and the emitter they share.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>

#include "rill/stream/window_operator.hpp"

namespace rill::stream::detail {

class StateWriter;
class StateReader;

/// One window of one key.
struct WindowState {
  TimeMs start = 0;
  TimeMs end = 0;
  std::unique_ptr<Accumulator> acc;
  std::uint64_t count = 0;
  std::optional<Row> emitted;  // the row downstream holds now (nullopt: none)
  bool retracted = false;      // its row was retracted (-U); the next emission is +U
};

/// a + b, saturating at max_time (windows near the end of time, lateness past it).
[[nodiscard]] inline TimeMs saturating_add(TimeMs a, std::int64_t b) noexcept {
  return a > max_time - b ? max_time : a + b;
}

/// Turns window changes into changelog rows: the one place that decides +I / -U / +U / -D.
/// Owned by the operator; not thread-safe.
class Emitter {
 public:
  Emitter(const Output& output, Emit mode, OperatorStats& stats) : m_out(output), m_mode(mode), m_stats(stats) {}
  /// The window's content changed while the watermark is `watermark`: emits now if every
  /// change is wanted or the window had already closed (a late correction).
  void changed(const std::string& key, WindowState& w, TimeMs watermark);
  /// The watermark passed the window's end: its final row, unless already emitted.
  void close(const std::string& key, WindowState& w);
  /// The window's extent is about to change: retracts its row (-U) if downstream holds one.
  void retract(WindowState& w);
  /// The window was merged into another: deletes its row (-D) if downstream holds one.
  void remove(WindowState& w);
  [[nodiscard]] Emit mode() const noexcept { return m_mode; }

 private:
  void emit_current(const std::string& key, WindowState& w);
  void send(const Row& row);

  const Output& m_out;
  Emit m_mode;
  OperatorStats& m_stats;
};

/// Windows of one kind, for every key. Owned by the operator; not thread-safe.
class WindowStore {
 public:
  virtual ~WindowStore() = default;
  /// Adds an accepted event; `watermark` is W now (the event may be behind it, within the
  /// allowed lateness).
  virtual void add(const Event& e, TimeMs watermark) = 0;
  /// W moved to `watermark`: closes windows with end <= W, frees those with end + lateness
  /// <= W. Returns true if it emitted or closed anything (then a marker follows).
  virtual bool advance(TimeMs watermark) = 0;
  /// Windows (and buffered events) held.
  [[nodiscard]] virtual std::size_t open_windows() const = 0;
  /// Whether a late event within the allowed lateness can update results (count windows: no).
  [[nodiscard]] virtual bool takes_late() const { return true; }
  /// Writes every window (and buffered event) for a checkpoint; false if an aggregate's
  /// state cannot be saved.
  [[nodiscard]] virtual bool save(StateWriter& out) const = 0;
  /// Reads what save() wrote into this empty store, re-arming timers against `watermark`;
  /// false (and the reader failed) on bytes that do not fit.
  [[nodiscard]] virtual bool load(StateReader& in, TimeMs watermark) = 0;
};

/// Windows by key, then by start: the state of time and session windows.
using KeyedWindows = std::unordered_map<std::string, std::map<TimeMs, WindowState>>;

/// One window's bytes in a checkpoint (its key is written by the caller).
[[nodiscard]] bool save_window(StateWriter& out, const WindowState& w);
/// Reads a window written by save_window, with a fresh accumulator from `aggregate`.
[[nodiscard]] bool load_window(StateReader& in, WindowState& w, const std::string& key, const Aggregate& aggregate);
/// Every key's windows; load calls `arm(key, window)` for each to rebuild its timers.
[[nodiscard]] bool save_keyed(StateWriter& out, const KeyedWindows& keys);
[[nodiscard]] bool load_keyed(StateReader& in, KeyedWindows& keys, const Aggregate& aggregate,
                              const std::function<void(const std::string&, const WindowState&)>& arm);

/// Timers by (time, key, window start), popped in time order as the watermark passes.
using TimerSet = std::set<std::tuple<TimeMs, std::string, TimeMs>>;

struct StoreParams {
  WindowSpec spec;
  const Aggregate* aggregate;
  std::int64_t lateness_ms;
  Emitter* emitter;
};

std::unique_ptr<WindowStore> make_time_windows(const StoreParams& p);     // tumbling, hopping
std::unique_ptr<WindowStore> make_session_windows(const StoreParams& p);  // session
std::unique_ptr<WindowStore> make_sliding_windows(const StoreParams& p);  // sliding
std::unique_ptr<WindowStore> make_ordered_windows(const StoreParams& p);  // count, global
std::unique_ptr<WindowStore> make_cumulate_windows(const StoreParams& p);  // cumulate

}  // namespace rill::stream::detail
