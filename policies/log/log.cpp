// Log and LogReader: appending (the group-commit hand-off to the writer thread) and reading
// records in place from mapped segments, CRC-checked one by one.
#include "rill/log.hpp"

#include <charconv>
#include <thread>

#include "base/logging.hpp"
#include "log_core.hpp"
#include "rill/codec.hpp"

namespace rill {

using detail::LogCore;
using detail::LogSegment;
namespace logfmt = detail::logfmt;

Result<FsyncPolicy> parse_fsync_policy(std::string_view text) {
  if (text == "always") return FsyncPolicy::always();
  if (text == "never") return FsyncPolicy::never();
  if (text.starts_with("every:")) {
    const auto num = text.substr(6);
    unsigned long ms = 0;
    const auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), ms);
    if (ec == std::errc{} && p == num.data() + num.size() && ms >= 1 && ms <= 3'600'000) {
      return FsyncPolicy::every(std::chrono::milliseconds(ms));
    }
  }
  return fail(Errc::invalid_argument,
              "fsync policy must be always, every:MS (1..3600000) or never, got '" + std::string(text) + "'");
}

std::string to_string(const FsyncPolicy& policy) {
  switch (policy.mode) {
    case FsyncMode::always:
      return "always";
    case FsyncMode::never:
      return "never";
    case FsyncMode::every:
      return "every:" + std::to_string(policy.interval.count());
  }
  return "?";
}

// ---------------------------------------------------------------- appending

namespace detail {

Result<std::uint64_t> LogCore::append_queued(QueuedAppend& q) {
  QueuedAppend* head = queue.load(std::memory_order_relaxed);
  do {
    if (head == &queue_sealed) return fail(Errc::closed, "log is closed");
    q.next = head;
  } while (!queue.compare_exchange_weak(head, &q, std::memory_order_release, std::memory_order_relaxed));
  const std::int64_t n = queued.fetch_add(1, std::memory_order_relaxed) + 1;
  // The writer is woken by the first request after it took the queue (it may be idle) and by
  // the one it is gathering for; mu is taken so that the wake-up cannot fall between its
  // look at the queue and its wait.
  if (head == nullptr || n == want_records.load(std::memory_order_relaxed)) {
    { std::lock_guard g(mu); }
    writer_cv.notify_one();
  }
  for (;;) {
    const std::uint32_t progress = settle_progress.load(std::memory_order_acquire);
    if (q.settled.load(std::memory_order_acquire)) break;
    settle_progress.wait(progress, std::memory_order_acquire);
  }
  if (q.error) return std::unexpected(*q.error);
  return q.seq;
}

}  // namespace detail

// ---------------------------------------------------------------- Log

Log::Log(std::shared_ptr<LogCore> core) : m_core(std::move(core)) {}
Log::Log(Log&&) noexcept = default;
Log& Log::operator=(Log&& o) noexcept {
  if (this != &o) {
    (void)close();
    m_core = std::move(o.m_core);
  }
  return *this;
}
Log::~Log() {
  (void)close();
}

Result<Log> Log::open(const std::filesystem::path& dir, const LogOptions& options) {
  if (options.segment_bytes < 4096 || options.index_interval_bytes == 0 || options.buffer_bytes == 0 ||
      options.max_record_bytes == 0 || options.max_record_bytes > (1u << 30)) {
    return fail(
        Errc::invalid_argument,
        "log options: segment_bytes >= 4096, index_interval_bytes, buffer_bytes > 0, max_record_bytes <= 1 GiB");
  }
  auto core = std::make_shared<LogCore>();
  core->dir = dir;
  core->opt = options;
  core->mu.set_gated(options.single_appender && !options.read_only && options.fsync.mode != FsyncMode::always);
  if (auto r = core->recover(); !r) return std::unexpected(r.error());
  if (!options.read_only) {
    if (auto r = core->retention(); !r) return std::unexpected(r.error());
    if (auto r = core->start_writer(); !r) return std::unexpected(r.error());
  } else {
    core->closed = true;
  }
  return Log(std::move(core));
}

Result<std::uint64_t> Log::append(std::span<const std::byte> body, const AppendMeta& meta) {
  if (!m_core) return fail(Errc::closed, "log is closed");
  LogCore& c = *m_core;
  if (c.opt.read_only) return fail(Errc::invalid_argument, "log is open read-only");
  if (body.size() > c.opt.max_record_bytes) return fail(Errc::too_large, "record exceeds max_record_bytes");
  const std::size_t size = logfmt::record_size(body.size());
  const std::int64_t ts = meta.timestamp_ns != 0 ? meta.timestamp_ns : wall_clock_ns();
  const std::uint64_t pid = meta.publisher_id != 0 ? meta.publisher_id : c.publisher_id;

  if (c.opt.fsync.mode == FsyncMode::always) {
    detail::QueuedAppend q;
    q.body = body;
    q.publisher_id = pid;
    q.timestamp_ns = ts;
    q.expect_sequence = meta.expect_sequence;
    return c.append_queued(q);
  }

  // A single appender usually enters through mu's gate: everything mu guards is its own
  // until it leaves, with no locked instruction (it falls back to the mutex whenever the
  // writer or anyone else holds mu, and to wait). Otherwise the writer holds mu only for
  // moments (a swap, its bookkeeping), once per coalesce_delay, and blocking on it would put
  // the publishing thread to sleep for a wake-up that costs far more than the wait, so spin
  // a little first.
  std::unique_lock lk(c.mu, std::defer_lock);
  struct FastHold {
    detail::GatedMutex* mu = nullptr;
    ~FastHold() {
      if (mu != nullptr) mu->unlock_fast();
    }
  } fast;
  if (c.mu.try_fast()) {
    fast.mu = &c.mu;
  } else {
    for (int spins = 0; !lk.try_lock(); ++spins) {
      if (spins >= 256) {
        lk.lock();
        break;
      }
      detail::cpu_relax();
    }
  }
  bool need_roll = false;
  for (;;) {
    if (c.stopping || c.closed) return fail(Errc::closed, "log is closed");
    if (c.stuck) return std::unexpected(*c.stuck);
    if (c.room_for(size, need_roll)) break;
    if (fast.mu != nullptr) {  // to wait, take the mutex
      fast.mu->unlock_fast();
      fast.mu = nullptr;
      lk.lock();
      continue;
    }
    // Group commit is behind: the buffer is full (bounded memory). The writer takes it next.
    c.flush_request = std::max(c.flush_request, c.active.gen);
    c.writer_cv.notify_one();
    c.append_cv.wait(lk);
  }
  if (meta.expect_sequence != 0 && meta.expect_sequence != c.next_seq) {
    return fail(Errc::invalid_argument, "expected to append sequence " + std::to_string(meta.expect_sequence) +
                                            " but the log is at " + std::to_string(c.next_seq));
  }
  const bool was_empty = c.active.empty();
  const std::uint64_t seq = c.add_record(body, pid, ts, need_roll);
  // While records flow the writer looks at the buffer every coalesce_delay by itself; it is
  // woken only from a nap (and above, by a full buffer), not per batch or append.
  if (was_empty) {
    c.active_since = std::chrono::steady_clock::now();
    if (c.writer_napping) c.writer_cv.notify_one();
  }
  return seq;
}

Result<void> Log::flush() {
  if (!m_core || m_core->opt.read_only) return {};
  LogCore& c = *m_core;
  std::unique_lock lk(c.mu);
  const std::uint64_t target = !c.active.empty() ? c.active.gen : !c.inflight.empty() ? c.inflight.gen : c.done_gen;
  const std::uint64_t epoch = c.fail_epoch;
  if (c.done_gen < target) {
    c.flush_request = std::max(c.flush_request, target);  // no coalescing delay for this one
    c.writer_cv.notify_one();
  }
  c.append_cv.wait(lk, [&] { return c.done_gen >= target || c.stuck || c.closed || c.fail_epoch != epoch; });
  if (c.stuck) return std::unexpected(*c.stuck);
  if (c.fail_epoch != epoch) return std::unexpected(*c.last_failure);
  if (c.done_gen < target) return fail(Errc::closed, "log closed");
  return {};
}

Result<void> Log::sync() {
  if (auto f = flush(); !f) return f;
  if (!m_core || m_core->opt.read_only) return {};
  LogCore& c = *m_core;
  std::unique_lock lk(c.mu);
  const std::uint64_t target = c.done_gen;
  if (c.synced_gen >= target) return {};
  c.sync_request = std::max(c.sync_request, target);
  c.writer_cv.notify_one();
  c.append_cv.wait(lk, [&] { return c.synced_gen >= target || c.stuck || c.closed; });
  if (c.stuck) return std::unexpected(*c.stuck);
  if (c.synced_gen < target) return fail(Errc::closed, "log closed");
  return {};
}

Result<void> Log::close() {
  if (!m_core || m_core->opt.read_only) return {};
  return m_core->stop_writer();
}

Result<LogReader> Log::reader(std::uint64_t seq) const {
  if (!m_core) return fail(Errc::closed, "log is closed");
  auto st = std::make_unique<LogReader::State>();
  LogReader r(std::move(st));
  r.m_state->core = m_core;
  if (auto s = r.seek(seq == 0 ? m_core->first_seq.load() : seq); !s) return std::unexpected(s.error());
  return r;
}

Result<std::size_t> Log::apply_retention() {
  if (!m_core || m_core->opt.read_only) return fail(Errc::invalid_argument, "log is open read-only");
  return m_core->retention();
}

std::uint64_t Log::publisher_id() const noexcept {
  return m_core->publisher_id;
}
std::uint64_t Log::next_sequence() const noexcept {
  std::lock_guard g(m_core->mu);
  return m_core->opt.read_only ? m_core->visible_seq.load() + 1 : m_core->next_seq;
}
std::uint64_t Log::first_sequence() const noexcept {
  return m_core->first_seq.load();
}
std::uint64_t Log::last_sequence() const noexcept {
  return m_core->visible_seq.load();
}
const LogRecovery& Log::recovery() const noexcept {
  return m_core->recovery;
}
const std::filesystem::path& Log::directory() const noexcept {
  return m_core->dir;
}

LogStats Log::stats() const noexcept {
  const auto& c = *m_core;
  return {c.st_appends.load(),  c.st_batches.load(), c.st_fsyncs.load(), c.st_bytes.load(),
          c.st_no_space.load(), c.st_deleted.load(), c.st_direct.load()};
}

std::vector<LogSegmentInfo> Log::segments() const {
  std::vector<LogSegmentInfo> out;
  std::lock_guard g(m_core->seg_mu);
  for (const auto& s : m_core->segs) {
    out.push_back({.file = s->path.filename().string(),
                   .base_seq = s->base_seq,
                   .last_seq = s->last_seq.load(),
                   .records = s->records,
                   .bytes = s->end.load(),
                   .first_ts_ns = s->records > 0 ? s->first_ts : 0,
                   .max_ts_ns = s->records > 0 ? s->max_ts : 0,
                   .active = s == m_core->segs.back() && !m_core->opt.read_only});
  }
  return out;
}

}  // namespace rill
