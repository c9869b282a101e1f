// LogReader: walks records in place in mapped segments. Every record is CRC-checked and
// its sequence compared with the expected one before it is handed out.
#include <thread>

#include "log_core.hpp"

namespace rill {

using detail::LogCore;
using detail::LogSegment;
namespace logfmt = detail::logfmt;

LogReader::LogReader(std::unique_ptr<State> state) : m_state(std::move(state)) {}
LogReader::LogReader(LogReader&&) noexcept = default;
LogReader& LogReader::operator=(LogReader&&) noexcept = default;
LogReader::~LogReader() = default;

std::uint64_t LogReader::position() const noexcept {
  return m_state->pos;
}
std::uint64_t LogReader::lost() const noexcept {
  return m_state->lost;
}

// Positions the reader at `pos` inside `s`: from the nearest index entry, walking (and
// checking) the records before it.
Result<void> LogReader::State::enter(std::shared_ptr<LogSegment> s) {
  const std::size_t want = std::max<std::size_t>(core->opt.segment_bytes, s->end.load(std::memory_order_acquire));
  auto m = detail::FileMap::map(s->path, want);
  if (!m) return std::unexpected(m.error());
  map = std::move(*m);
  seg = std::move(s);
  if (pos < seg->base_seq) {  // deleted by retention before we got there
    lost += seg->base_seq - pos;
    pos = seg->base_seq;
  }
  off = logfmt::segment_header_bytes;
  std::uint64_t at_seq = seg->base_seq;
  {
    std::lock_guard g(core->seg_mu);
    const auto& idx = seg->index;
    auto it = std::upper_bound(idx.begin(), idx.end(), pos,
                               [](std::uint64_t p, const logfmt::IndexEntry& e) { return p < e.sequence; });
    if (it != idx.begin()) {
      --it;
      off = it->offset;
      at_seq = it->sequence;
    }
  }
  const std::uint64_t end = seg->end.load(std::memory_order_acquire);
  const auto data = map.bytes().first(std::min<std::size_t>(end, map.bytes().size()));
  logfmt::RecordView r;
  while (at_seq < pos && off < data.size()) {
    const auto c = logfmt::check_record(data, off, core->opt.max_record_bytes, r);
    if (c != logfmt::RecordCheck::ok) return std::unexpected(detail::corrupt_at(seg->path, off, logfmt::to_string(c)));
    if (r.sequence != at_seq) {
      return std::unexpected(detail::corrupt_at(
          seg->path, off,
          "sequence " + std::to_string(r.sequence) + " where " + std::to_string(at_seq) + " was expected"));
    }
    off += r.size;
    ++at_seq;
  }
  return {};
}

Result<std::optional<LogRecord>> LogReader::next() {
  State& s = *m_state;
  for (;;) {
    if (!s.seg) {
      if (auto e = s.enter(s.core->segment_for(s.pos)); !e) return std::unexpected(e.error());
    }
    const std::uint64_t last = s.seg->last_seq.load(std::memory_order_acquire);
    if (s.pos <= last) {
      const std::uint64_t end = s.seg->end.load(std::memory_order_acquire);
      if (end > s.map.bytes().size()) {  // a record larger than the mapping: map again
        const auto keep = s.pos;
        if (auto e = s.enter(s.seg); !e) return std::unexpected(e.error());
        s.pos = keep;
      }
      logfmt::RecordView r;
      const auto c = logfmt::check_record(s.map.bytes().first(end), s.off, s.core->opt.max_record_bytes, r);
      if (c != logfmt::RecordCheck::ok) {
        return std::unexpected(detail::corrupt_at(s.seg->path, s.off, logfmt::to_string(c)));
      }
      if (r.sequence < s.pos) {  // positioned past the end before these arrived: skip up to pos
        s.off += r.size;
        continue;
      }
      if (r.sequence != s.pos) {
        return std::unexpected(detail::corrupt_at(
            s.seg->path, s.off,
            "sequence " + std::to_string(r.sequence) + " where " + std::to_string(s.pos) + " was expected"));
      }
      s.off += r.size;
      ++s.pos;
      return LogRecord{r.sequence, r.publisher_id, r.timestamp_ns, r.body};
    }
    // sealed is stored after the segment's final last_seq: look at last_seq again once it is.
    if (!s.seg->sealed.load(std::memory_order_acquire)) return std::optional<LogRecord>{};
    if (s.pos <= s.seg->last_seq.load(std::memory_order_acquire)) continue;
    auto nxt = s.core->segment_for(s.pos);
    if (nxt == s.seg) return std::optional<LogRecord>{};
    if (auto e = s.enter(std::move(nxt)); !e) return std::unexpected(e.error());
  }
}

Result<bool> LogReader::wait(std::chrono::milliseconds timeout) {
  State& s = *m_state;
  LogCore& c = *s.core;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (c.opt.read_only) {
    for (;;) {
      if (c.visible_seq.load() >= s.pos) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      if (auto r = c.refresh(); !r) return std::unexpected(r.error());
    }
  }
  c.vis_waiters.fetch_add(1);
  std::unique_lock lk(c.vis_mu);
  const bool ok = c.vis_cv.wait_until(lk, deadline, [&] { return c.visible_seq.load() >= s.pos || c.closed; }) &&
                  c.visible_seq.load() >= s.pos;
  lk.unlock();
  c.vis_waiters.fetch_sub(1);
  return ok;
}

Result<void> LogReader::seek(std::uint64_t seq) {
  State& s = *m_state;
  const std::uint64_t first = s.core->first_seq.load();
  if (seq < first) {
    s.lost += first - seq;
    seq = first;
  }
  s.pos = seq;
  s.seg.reset();
  return {};
}

Result<void> LogReader::seek_time(std::int64_t ts_ns) {
  State& s = *m_state;
  LogCore& c = *s.core;
  std::shared_ptr<LogSegment> target;
  std::uint64_t from_seq = 0;
  {
    // Each entry holds the largest timestamp before it, so no record at or after ts_ns is
    // skipped even when the wall clock stepped back between appends.
    std::lock_guard g(c.seg_mu);
    for (const auto& seg : c.segs) {
      if (seg->records > 0 && seg->max_ts >= ts_ns) {
        target = seg;
        from_seq = seg->base_seq;
        for (const auto& e : seg->index) {
          if (e.max_ts_before >= ts_ns) break;
          from_seq = e.sequence;
        }
        break;
      }
    }
  }
  if (!target) {
    s.pos = c.visible_seq.load() + 1;
    s.seg.reset();
    return {};
  }
  s.pos = from_seq;
  if (auto e = s.enter(target); !e) return e;
  // Walk to the first record at or after ts_ns; stop at the visible end.
  for (;;) {
    const auto saved_seg = s.seg;
    const std::size_t saved_off = s.off;
    const std::uint64_t saved_pos = s.pos;
    auto r = next();
    if (!r) return std::unexpected(r.error());
    if (!*r) return {};
    if ((*r)->timestamp_ns >= ts_ns) {
      if (s.seg == saved_seg) {
        s.off = saved_off;
        s.pos = saved_pos;
      } else {
        s.pos = (*r)->sequence;
        s.seg.reset();
      }
      return {};
    }
  }
}

}  // namespace rill

namespace rill::detail {

Result<void> LogCore::refresh() {
  // Read-only: another process may have appended or rolled. Only whole, valid records in
  // sequence are taken; a partial one at the end is a write still in progress.
  std::lock_guard g(seg_mu);
  for (;;) {
    auto& seg = segs.back();
    auto m = FileMap::map(seg->path);
    if (!m) return std::unexpected(m.error());
    const auto data = m->bytes();
    std::size_t off = seg->end.load();
    std::uint64_t last = seg->last_seq.load();
    logfmt::RecordView r;
    while (logfmt::check_record(data, off, opt.max_record_bytes, r) == logfmt::RecordCheck::ok &&
           r.sequence == last + 1) {
      seg->note_record(r, opt.index_interval_bytes);
      last = r.sequence;
      off += r.size;
    }
    seg->end.store(off, std::memory_order_release);
    seg->last_seq.store(last, std::memory_order_release);
    visible_seq.store(last);
    const auto next_path = dir / logfmt::segment_name(last + 1, ".log");
    auto nm = FileMap::map(next_path);
    if (!nm || !logfmt::decode_segment_header(nm->bytes())) return {};
    auto ns = std::make_shared<LogSegment>();
    ns->path = next_path;
    ns->base_seq = last + 1;
    ns->last_seq = last;
    ns->end = logfmt::segment_header_bytes;
    seg->sealed.store(true, std::memory_order_release);
    segs.push_back(std::move(ns));
  }
}

}  // namespace rill::detail
