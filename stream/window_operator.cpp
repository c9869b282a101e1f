// WindowOperator: late-event routing, watermark advance and the completeness marker; the
// window kinds themselves live in their stores.
#include "rill/stream/window_operator.hpp"

#include "stream/window_store.hpp"

namespace rill::stream {

namespace {
Result<void> check(const OperatorOptions& o) {
  const WindowSpec& w = o.window;
  switch (w.kind) {
    case WindowKind::tumbling:
    case WindowKind::sliding:
      if (w.size_ms <= 0) return fail(Errc::invalid_argument, "window size must be > 0");
      break;
    case WindowKind::hopping:
      if (w.size_ms <= 0 || w.hop_ms <= 0 || w.hop_ms > w.size_ms) {
        return fail(Errc::invalid_argument, "hopping window needs 0 < hop <= size");
      }
      break;
    case WindowKind::cumulate:
      if (w.size_ms <= 0 || w.hop_ms <= 0 || w.hop_ms > w.size_ms || w.size_ms % w.hop_ms != 0) {
        return fail(Errc::invalid_argument, "cumulate window needs 0 < step <= size, size a multiple of step");
      }
      break;
    case WindowKind::session:
      if (w.gap_ms <= 0) return fail(Errc::invalid_argument, "session gap must be > 0");
      break;
    case WindowKind::count:
      if (w.count == 0) return fail(Errc::invalid_argument, "count window needs count > 0");
      break;
    case WindowKind::global: break;
  }
  if (!o.aggregate) return fail(Errc::invalid_argument, "no aggregate");
  if (o.allowed_lateness.count() < 0 || o.watermark.out_of_orderness.count() < 0 ||
      o.watermark.idle_after.count() < 0 || o.watermark.close_when_all_idle.count() < 0) {
    return fail(Errc::invalid_argument, "durations must be >= 0");
  }
  if (o.late_alert.period.count() > 0 && !o.late_alert.callback) {
    return fail(Errc::invalid_argument, "late_alert needs a callback");
  }
  return {};
}
}  // namespace

Result<WindowOperator> WindowOperator::create(OperatorOptions options, Output output) {
  if (auto ok = check(options); !ok) return std::unexpected(ok.error());
  WindowOperator op;
  op.m_options = std::move(options);
  op.m_aggregate = std::make_unique<Aggregate>(std::move(op.m_options.aggregate));
  op.m_output = std::make_unique<Output>(std::move(output));
  op.m_stats = std::make_unique<OperatorStats>();
  op.m_tracker = std::make_unique<WatermarkTracker>(op.m_options.watermark);
  op.m_emitter = std::make_unique<detail::Emitter>(*op.m_output, op.m_options.emit, *op.m_stats);
  op.make_store();
  op.m_alert_start = op.m_tracker->now();
  return op;
}

void WindowOperator::make_store() {
  const detail::StoreParams params{.spec = m_options.window,
                                   .aggregate = m_aggregate.get(),
                                   .lateness_ms = m_options.allowed_lateness.count(),
                                   .emitter = m_emitter.get()};
  switch (m_options.window.kind) {
    case WindowKind::tumbling:
    case WindowKind::hopping: m_store = detail::make_time_windows(params); break;
    case WindowKind::session: m_store = detail::make_session_windows(params); break;
    case WindowKind::sliding: m_store = detail::make_sliding_windows(params); break;
    case WindowKind::count:
    case WindowKind::global: m_store = detail::make_ordered_windows(params); break;
    case WindowKind::cumulate: m_store = detail::make_cumulate_windows(params); break;
  }
}

WindowOperator::WindowOperator(WindowOperator&&) noexcept = default;
WindowOperator& WindowOperator::operator=(WindowOperator&&) noexcept = default;
WindowOperator::~WindowOperator() = default;

void WindowOperator::process(const Event& event) {
  ++m_stats->events;
  const TimeMs w = m_tracker->watermark();
  const bool late = event.time < w;
  if (!late) {
    m_store->add(event, w);
  } else if (m_store->takes_late() && event.time >= w - m_options.allowed_lateness.count()) {
    ++m_stats->late_accepted;
    m_store->add(event, w);
  } else if (m_options.late == LatePolicy::side_output) {
    ++m_stats->late_side;
    if (m_output->late) m_output->late(event);
  } else {
    ++m_stats->late_dropped;
  }
  note_late_alert(true, late);
  m_tracker->observe(event.source, event.time);
  advance(m_tracker->update());
}

void WindowOperator::tick() {
  note_late_alert(false, false);
  advance(m_tracker->update());
}

void WindowOperator::finish() {
  note_late_alert(false, false, true);  // the last, partial period counts too
  m_tracker->advance_to(max_time);
  advance(max_time);
}

void WindowOperator::advance(TimeMs to) {
  if (to <= m_advanced) return;
  m_advanced = to;
  if (m_store->advance(to)) {
    ++m_stats->markers;
    if (m_output->watermark) m_output->watermark(to);
  }
}

void WindowOperator::note_late_alert(bool event, bool late, bool end_of_input) {
  const LateAlert& a = m_options.late_alert;
  if (a.period.count() <= 0) return;
  m_alert_total += event ? 1 : 0;
  m_alert_late += late ? 1 : 0;
  const std::int64_t now = m_tracker->now();
  if (now - m_alert_start < a.period.count() && !end_of_input) return;
  if (m_alert_total > 0 && static_cast<double>(m_alert_late) > a.fraction * static_cast<double>(m_alert_total)) {
    ++m_stats->alerts;
    a.callback(m_alert_late, m_alert_total);
  }
  m_alert_start = now;
  m_alert_late = 0;
  m_alert_total = 0;
}

TimeMs WindowOperator::watermark() const noexcept { return m_advanced; }

OperatorStats WindowOperator::stats() const noexcept {
  OperatorStats s = *m_stats;
  s.open_windows = m_store->open_windows();
  return s;
}

}  // namespace rill::stream
