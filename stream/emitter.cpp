// The changelog rules in one place: +I first, -U old then +U new for a change downstream
// already holds, -D for a row merged away.
#include "stream/window_store.hpp"

namespace rill::stream::detail {

void Emitter::send(const Row& row) {
  ++m_stats.rows;
  if (row.kind == RowKind::update_before || row.kind == RowKind::remove) ++m_stats.corrections;
  if (m_out.row) m_out.row(row);
}

void Emitter::emit_current(const std::string& key, WindowState& w) {
  Row row{.kind = RowKind::insert, .key = key, .start = w.start, .end = w.end, .value = w.acc->result(),
          .count = w.count, .detail = {}};
  w.acc->detail(row.detail);
  if (w.emitted) {
    Row before = *w.emitted;
    before.kind = RowKind::update_before;
    send(before);
    row.kind = RowKind::update_after;
  } else if (w.retracted) {
    row.kind = RowKind::update_after;
  }
  w.retracted = false;
  send(row);
  w.emitted = std::move(row);
}

void Emitter::changed(const std::string& key, WindowState& w, TimeMs watermark) {
  if (m_mode == Emit::every_change || w.end <= watermark) emit_current(key, w);
}

void Emitter::close(const std::string& key, WindowState& w) {
  if (!w.emitted) emit_current(key, w);
}

void Emitter::retract(WindowState& w) {
  if (!w.emitted) return;
  Row before = *w.emitted;
  before.kind = RowKind::update_before;
  send(before);
  w.emitted.reset();
  w.retracted = true;
}

void Emitter::remove(WindowState& w) {
  if (!w.emitted) return;
  Row gone = *w.emitted;
  gone.kind = RowKind::remove;
  send(gone);
  w.emitted.reset();
}

}  // namespace rill::stream::detail
