// WindowOperator: keyed windows over event time, fired by the watermark, with late-event
// policies and a changelog output.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "rill/error.hpp"
#include "rill/stream/aggregate.hpp"
#include "rill/stream/types.hpp"
#include "rill/stream/watermark.hpp"
#include "rill/stream/window.hpp"

namespace rill::stream {

namespace detail {
class WindowStore;
class Emitter;
}  // namespace detail

/// When rows are emitted.
enum class Emit : std::uint8_t {
  final_only,    ///< once, when the watermark passes the window's end (+I), plus corrections
  every_change,  ///< at every change of a window (+I, then -U/+U pairs)
};

/// What happens to an event behind the watermark (time < W) that no allowed lateness covers.
enum class LatePolicy : std::uint8_t {
  drop,         ///< counted in stats().late_dropped
  side_output,  ///< handed to Output::late (and counted in stats().late_side)
};

/// Calls `callback` when, over one `period` of processing time, more than `fraction` of the
/// events were late (behind the watermark, whatever then happened to them). Checked as
/// events arrive and at tick(); finish() checks the last, partial period.
struct LateAlert {
  double fraction = 0;
  std::chrono::milliseconds period{0};  ///< 0: no alert
  std::function<void(std::uint64_t late, std::uint64_t total)> callback{};
};

/// A WindowOperator's settings; fill with designated initializers.
struct OperatorOptions {
  WindowSpec window = tumbling(std::chrono::seconds(1));
  Aggregate aggregate = sum();
  WatermarkOptions watermark{};
  Emit emit = Emit::final_only;
  /// Late events down to W - allowed_lateness still update their windows; a window already
  /// emitted gets a correction (-U old row, +U new row). Window state is freed once the
  /// watermark passes end + allowed_lateness. Count windows take no late events.
  std::chrono::milliseconds allowed_lateness{0};
  LatePolicy late = LatePolicy::drop;
  LateAlert late_alert{};
};

/// Where results go. Called on the thread that calls process()/tick()/finish().
struct Output {
  std::function<void(const Row&)> row{};
  /// The completeness marker: every window ending at or before `watermark` has its final
  /// row emitted. Sent after the rows of each watermark advance that closed a window.
  std::function<void(TimeMs watermark)> watermark{};
  /// LatePolicy::side_output: the late event.
  std::function<void(const Event&)> late{};
};

/// Counters; read from the operator's thread.
struct OperatorStats {
  std::uint64_t events = 0;         ///< events processed
  std::uint64_t late_dropped = 0;   ///< late, dropped
  std::uint64_t late_side = 0;      ///< late, sent to the side output
  std::uint64_t late_accepted = 0;  ///< late, within the allowed lateness
  std::uint64_t rows = 0;           ///< rows emitted (every kind)
  std::uint64_t corrections = 0;    ///< -U and -D rows among them
  std::uint64_t markers = 0;        ///< completeness markers emitted
  std::uint64_t alerts = 0;         ///< late alerts fired
  std::size_t open_windows = 0;     ///< windows held in state
};

/// Where a job stood when a checkpoint was taken, saved with the operator's state.
struct Positions {
  std::map<std::uint64_t, std::uint64_t> inputs;  ///< publisher id -> last sequence processed
  std::uint64_t outputs = 0;                      ///< rows and markers emitted up to then
};

/// One keyed window aggregation. Move-only; not thread-safe (one thread feeds it).
class WindowOperator {
 public:
  /// Checks the options (sizes > 0, hop <= size, ...): invalid_argument otherwise.
  [[nodiscard]] static Result<WindowOperator> create(OperatorOptions options, Output output);
  WindowOperator(WindowOperator&&) noexcept;
  WindowOperator& operator=(WindowOperator&&) noexcept;
  ~WindowOperator();

  /// Takes one event (in arrival order), then advances the watermark and fires what closed.
  void process(const Event& event);
  /// Re-evaluates the watermark against the clock (idle sources, all-idle close) and fires;
  /// call it while no events arrive.
  void tick();
  /// End of input: the watermark moves to max_time, closing every window that can close.
  void finish();

  /// Writes the operator's whole state (windows, buffered events, watermarks, counters)
  /// and `inputs` to `path` atomically: a temporary file, fsync, rename, fsync of the
  /// directory. unsupported if the aggregate's state cannot be saved (not trivially copyable).
  [[nodiscard]] Result<void> checkpoint(const std::string& path,
                                        const std::map<std::uint64_t, std::uint64_t>& inputs) const;
  /// Loads a checkpoint into this operator, which must be fresh (no event yet) and have the
  /// same window kind, sizes and lateness: invalid_argument, incompatible, or corrupt for a
  /// damaged file, io_error when unreadable. Returns the positions saved with it.
  [[nodiscard]] Result<Positions> restore(const std::string& path);
  /// The same from checkpoint bytes already in memory.
  [[nodiscard]] Result<Positions> restore_bytes(std::string_view bytes);

  [[nodiscard]] TimeMs watermark() const noexcept;
  [[nodiscard]] OperatorStats stats() const noexcept;
  [[nodiscard]] const WatermarkTracker& watermarks() const noexcept { return *m_tracker; }

 private:
  WindowOperator() = default;
  void make_store();
  void advance(TimeMs to);
  void note_late_alert(bool event, bool late, bool end_of_input = false);

  OperatorOptions m_options;
  // Behind pointers so their addresses survive moves: the store and emitter refer to them.
  std::unique_ptr<Aggregate> m_aggregate;
  std::unique_ptr<Output> m_output;
  std::unique_ptr<OperatorStats> m_stats;  // stable address: the store and emitter count into it
  std::unique_ptr<WatermarkTracker> m_tracker;
  std::unique_ptr<detail::Emitter> m_emitter;
  std::unique_ptr<detail::WindowStore> m_store;
  TimeMs m_advanced = min_time;  // the watermark the windows have been advanced to
  std::int64_t m_alert_start = 0;
  std::uint64_t m_alert_late = 0;
  std::uint64_t m_alert_total = 0;
};

}  // namespace rill::stream
