// JoinOperator: two watermark trackers combined by minimum, late-record routing, and the
// advance that fires windows and frees expired state; the join kinds live in their stores.
#include "rill/stream/join.hpp"
#include "stream/join_store.hpp"

namespace rill::stream {

namespace {
// Bounds beyond detail::time_limit could overflow time arithmetic in the stores.
bool bounded(std::int64_t v) noexcept {
  return v > -detail::time_limit && v < detail::time_limit;
}

Result<void> check(const JoinOptions& o) {
  switch (o.kind) {
    case JoinKind::window: {
      const WindowSpec& w = o.window;
      if (w.kind != WindowKind::tumbling && w.kind != WindowKind::hopping) {
        return fail(Errc::invalid_argument, "a window join takes tumbling or hopping windows");
      }
      const std::int64_t hop = w.kind == WindowKind::hopping ? w.hop_ms : w.size_ms;
      if (w.size_ms <= 0 || hop <= 0 || hop > w.size_ms || !bounded(w.size_ms)) {
        return fail(Errc::invalid_argument, "window join needs 0 < hop <= size < 2^60 ms");
      }
      break;
    }
    case JoinKind::interval:
      if (!bounded(o.lower.count()) || !bounded(o.upper.count()) || o.lower.count() + o.upper.count() < 0) {
        return fail(Errc::invalid_argument, "interval join needs lower + upper >= 0 (each within 2^60 ms)");
      }
      break;
    case JoinKind::regular_inner:
    case JoinKind::regular_left_outer:
      if (o.ttl.count() < 0 || !bounded(o.ttl.count())) return fail(Errc::invalid_argument, "ttl must be >= 0");
      break;
  }
  if (o.watermark.out_of_orderness.count() < 0 || o.watermark.idle_after.count() < 0 ||
      o.watermark.close_when_all_idle.count() < 0) {
    return fail(Errc::invalid_argument, "durations must be >= 0");
  }
  return {};
}
}  // namespace

Result<JoinOperator> JoinOperator::create(JoinOptions options, JoinOutput output) {
  if (auto ok = check(options); !ok) return std::unexpected(ok.error());
  JoinOperator op;
  op.m_options = std::move(options);
  op.m_output = std::make_unique<JoinOutput>(std::move(output));
  op.m_stats = std::make_unique<JoinStats>();
  op.m_left = std::make_unique<WatermarkTracker>(op.m_options.watermark);
  op.m_right = std::make_unique<WatermarkTracker>(op.m_options.watermark);
  op.m_emitter = std::make_unique<detail::JoinEmitter>(*op.m_output, *op.m_stats);
  op.make_store();
  return op;
}

void JoinOperator::make_store() {
  m_store = m_options.kind == JoinKind::window ? detail::make_window_join(m_options, *m_emitter)
                                               : detail::make_keyed_join(m_options, *m_emitter);
}

JoinOperator::JoinOperator(JoinOperator&&) noexcept = default;
JoinOperator& JoinOperator::operator=(JoinOperator&&) noexcept = default;
JoinOperator::~JoinOperator() = default;

bool JoinOperator::is_late(const JoinEvent& e) const noexcept {
  switch (m_options.kind) {
    case JoinKind::window:
    case JoinKind::interval:
      return e.time < m_advanced;
    case JoinKind::regular_inner:
    case JoinKind::regular_left_outer:
      // Without a ttl nothing expires, so nothing is too late; with one, a record already
      // past its ttl would be freed at once.
      return m_options.ttl.count() > 0 && e.time + m_options.ttl.count() < m_advanced;
  }
  return false;
}

void JoinOperator::process(Side side, const JoinEvent& event) {
  ++(side == Side::left ? m_stats->left_events : m_stats->right_events);
  if (!detail::in_time_range(event.time)) {
    ++m_stats->bad_time;
    return;
  }
  if (!is_late(event)) {
    if (m_options.max_state_records > 0 && m_store->records() >= m_options.max_state_records) {
      ++m_stats->over_limit;
    } else {
      m_store->add(side, event, m_advanced);
    }
  } else if (m_options.late == LatePolicy::side_output) {
    ++m_stats->late_side;
    if (m_output->late) m_output->late(side, event);
  } else {
    ++m_stats->late_dropped;
  }
  (side == Side::left ? m_left : m_right)->observe(event.source, event.time);
  advance(combined());
}

TimeMs JoinOperator::combined() {
  const TimeMs lw = m_left->update();
  const TimeMs rw = m_right->update();
  // An input whose sources have all gone idle stops holding the join back, as one idle
  // source stops holding its input back; an input never heard from holds it (min_time).
  const bool idle_on = m_options.watermark.idle_after.count() > 0;
  const bool left_idle = idle_on && m_left->sources() > 0 && m_left->active_sources() == 0;
  const bool right_idle = idle_on && m_right->sources() > 0 && m_right->active_sources() == 0;
  if (left_idle && right_idle) return m_advanced;
  if (left_idle) return rw;
  if (right_idle) return lw;
  return std::min(lw, rw);
}

void JoinOperator::tick() {
  advance(combined());
}

void JoinOperator::finish() {
  m_left->advance_to(max_time);
  m_right->advance_to(max_time);
  advance(max_time);
}

void JoinOperator::advance(TimeMs to) {
  if (to <= m_advanced) return;
  m_advanced = to;
  if (m_store->advance(to)) {
    ++m_stats->markers;
    if (m_output->watermark) m_output->watermark(to);
  }
}

JoinStats JoinOperator::stats() const noexcept {
  JoinStats s = *m_stats;
  s.state_records = m_store->records();
  return s;
}

}  // namespace rill::stream
