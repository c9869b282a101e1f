// The writer thread: swaps the append buffer out (under `always`, after adding the records
// appenders queued for it), writes it through io_uring (a linked fdatasync under `always`),
// rolls segments, publishes what became visible, retries a full disk. One thread per log, so
// one write (+ one fsync) serves every waiting appender.
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>

#include "base/logging.hpp"
#include "log_core.hpp"

namespace rill::detail {

namespace {

Errc errc_for(int e) {
  return e == ENOSPC || e == EDQUOT ? Errc::no_space : Errc::io_error;
}

template <class T>
T field(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

Result<void> LogCore::start_writer() {
  if (const int rc = io_uring_queue_init(8, &ring, 0); rc < 0) {
    return fail(Errc::io_error, "io_uring_queue_init", -rc);
  }
  ring_ok = true;
  active.bytes.reserve(opt.buffer_bytes);
  inflight.bytes.reserve(opt.buffer_bytes);
  active.gen = gen_counter;
  next_seq = segs.back()->last_seq + 1;
  committed_seq = next_seq - 1;
  tail_end = file_end;
  tail_records = segs.back()->records;
  writer = std::thread([this] {
    pthread_setname_np(pthread_self(), "rill-logwriter");
    writer_main();
  });
  return {};
}

Result<void> LogCore::write_at(int wfd, std::span<const std::byte> data, std::uint64_t offset, bool sync) {
  for (;;) {
    unsigned n = 0;
    if (!data.empty()) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      io_uring_prep_write(sqe, wfd, data.data(), static_cast<unsigned>(data.size()), offset);
      sqe->user_data = 1;
      if (sync) sqe->flags |= IOSQE_IO_LINK;  // the fsync runs only after the write completed in full
      ++n;
    }
    if (sync) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
      sqe->user_data = 2;
      ++n;
    }
    if (n == 0) return {};
    if (const int rc = io_uring_submit_and_wait(&ring, n); rc < 0) return fail(Errc::io_error, "io_uring_submit", -rc);
    int wres = 0;
    int fres = 0;
    for (unsigned got = 0; got < n;) {
      io_uring_cqe* cqe = nullptr;
      int rc = 0;
      while ((rc = io_uring_wait_cqe(&ring, &cqe)) == -EINTR) {
      }
      if (rc < 0) return fail(Errc::io_error, "io_uring_wait_cqe", -rc);
      if (cqe->user_data == background_sync_tag) {
        background_sync_res = cqe->res;  // the fdatasync in the background ended meanwhile
      } else {
        (cqe->user_data == 1 ? wres : fres) = cqe->res;
        ++got;
      }
      io_uring_cqe_seen(&ring, cqe);
    }
    if (!data.empty()) {
      if (wres == -EINTR || wres == -EAGAIN) continue;
      if (wres < 0) return fail(errc_for(-wres), "write " + segs.back()->path.filename().string(), -wres);
      if (wres == 0) return fail(Errc::io_error, "write made no progress");
      data = data.subspan(static_cast<std::size_t>(wres));
      offset += static_cast<std::uint64_t>(wres);
      if (!data.empty()) continue;  // short write (the linked fsync was cancelled): write the rest
    }
    if (sync) {
      if (fres < 0) return fail(errc_for(-fres), "fdatasync " + segs.back()->path.filename().string(), -fres);
      ++st_fsyncs;
    }
    return {};
  }
}

Result<void> LogCore::fdatasync_active() {
  return write_at(fd, {}, 0, true);
}

bool LogCore::start_background_sync() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  if (sqe == nullptr) return false;
  io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
  sqe->user_data = background_sync_tag;
  // Queued from here on: if this submit fails (a transient EINTR/EAGAIN/EBUSY), the next one
  // (background_sync_result's, or write_at's) takes it along.
  (void)io_uring_submit(&ring);
  return true;
}

std::optional<int> LogCore::background_sync_result(bool wait) {
  if (!background_sync_res && io_uring_sq_ready(&ring) > 0) (void)io_uring_submit(&ring);
  while (!background_sync_res) {
    io_uring_cqe* cqe = nullptr;
    const int rc = wait ? io_uring_wait_cqe(&ring, &cqe) : io_uring_peek_cqe(&ring, &cqe);
    if (rc == -EINTR) continue;
    if (rc < 0) {
      if (!wait) return std::nullopt;  // not done yet
      background_sync_res = rc;          // the ring itself failed: report it as the sync's error
      break;
    }
    if (cqe->user_data == background_sync_tag) background_sync_res = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
  }
  return std::exchange(background_sync_res, std::nullopt);
}

void LogCore::open_direct(const std::filesystem::path& path) {
  if (direct_fd >= 0) ::close(direct_fd);
  direct_fd = -1;
  direct.at = UINT64_MAX;
  if (opt.direct_io && !direct_refused) {
    direct_fd = ::open(path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (direct_fd < 0) {
      log().warn("log {}: O_DIRECT refused ({}); writing through the page cache", dir.string(), std::strerror(errno));
      direct_refused = true;
    }
  }
  st_direct = direct_fd >= 0;
}

Result<void> LogCore::write_direct(std::span<const std::byte> part, bool sync) {
  constexpr std::uint64_t block = DirectBuf::block;
  const std::uint64_t start = file_end & ~(block - 1);
  const std::size_t head = file_end - start;
  const std::size_t len = (head + part.size() + block - 1) & ~(block - 1);
  const bool have_head = direct.at == start;
  if (!direct.reserve(len, have_head ? head : 0)) return fail(Errc::io_error, "out of memory for a direct write");
  std::byte* buf = direct.p.get();
  if (head > 0 && !have_head) {
    // After an open or a roll: the block's head is read back once (from the page cache).
    const auto got = ::pread(fd, buf, head, static_cast<off_t>(start));
    if (got != static_cast<ssize_t>(head)) {
      return fail(Errc::io_error, "read back the last block of " + segs.back()->path.filename().string(),
                  got < 0 ? errno : EIO);
    }
  }
  direct.at = start;
  std::memcpy(buf + head, part.data(), part.size());
  std::memset(buf + head + part.size(), 0, len - head - part.size());
  if (auto w = write_at(direct_fd, {buf, len}, start, sync); !w) return w;
  // The new partial block moves to the front for the next write.
  const std::uint64_t end = file_end + part.size();
  const std::uint64_t next = end & ~(block - 1);
  std::memmove(buf, buf + (next - start), end - next);
  direct.at = next;
  return {};
}

Result<void> LogCore::cut_padding() {
  if (direct_fd < 0) return {};
  if (::ftruncate(fd, static_cast<off_t>(file_end)) != 0) {
    return fail(errc_for(errno), "truncate " + segs.back()->path.filename().string(), errno);
  }
  return {};
}

void LogCore::publish(std::span<const std::byte> part, const std::shared_ptr<LogSegment>& seg, std::uint64_t start) {
  std::uint64_t last = 0;
  {
    std::lock_guard g(seg_mu);
    logfmt::RecordView r;
    for (std::size_t off = 0; off < part.size(); off += r.size) {
      const std::byte* p = part.data() + off;
      r.sequence = field<std::uint64_t>(p + 8);
      r.timestamp_ns = field<std::int64_t>(p + 24);
      r.offset = start + off;
      r.size = logfmt::record_size(field<std::uint32_t>(p));
      seg->note_record(r, opt.index_interval_bytes);
      last = r.sequence;
    }
  }
  seg->end.store(start + part.size(), std::memory_order_release);
  seg->last_seq.store(last, std::memory_order_release);
  visible_seq.store(last);
  if (vis_waiters.load() > 0) {
    { std::lock_guard g(vis_mu); }
    vis_cv.notify_all();
  }
}

Result<void> LogCore::write_batch(LogBatch& b, bool sync) {
  auto seg = active_segment();
  const auto all = b.bytes.span();
  const std::size_t split = std::min(b.roll_at, all.size());
  auto write_part = [&](std::span<const std::byte> part) -> Result<void> {
    if (part.empty()) return {};
    auto w = direct_fd >= 0 ? write_direct(part, sync) : write_at(fd, part, file_end, sync);
    if (!w) {
      // Whatever part of it reached the file is cut again: the segment ends on a record.
      if (::ftruncate(fd, static_cast<off_t>(file_end)) != 0) {
        log().error("log {}: cannot cut a failed write back: {}", dir.string(), std::strerror(errno));
      }
      return w;
    }
    ++st_batches;
    st_bytes += part.size();
    publish(part, seg, file_end);
    file_end += part.size();
    return {};
  };
  if (b.stage == 0) {
    // Appenders leave the CRCs to this thread (one pass over a batch that is still in cache,
    // on a core the publisher is not using); sealing again on a retry gives the same bytes.
    logfmt::seal_records(b.bytes.span());
    if (auto w = write_part(all.first(split)); !w) return w;
    b.stage = b.roll_at == SIZE_MAX ? 3 : 1;
  }
  if (b.stage == 1) {
    // The old segment is synced before its index (the checkpoint) says it is complete,
    // and a sealed segment ends on its last record (no direct-write padding).
    if (auto c = cut_padding(); !c) return c;
    if (!sync || direct_fd >= 0) {
      if (auto s = fdatasync_active(); !s) return s;
    }
    const auto old = seg;
    const std::uint64_t old_end = file_end;
    if (auto c = create_segment(b.roll_base); !c) return c;
    if (auto w = write_index(*old, old_end); !w) {
      // Not fatal: the next open rebuilds a missing index by scanning the segment.
      log().warn("log {}: index of {} not written: {}", dir.string(), old->path.filename().string(),
                 w.error().message());
    } else {
      std::lock_guard g(seg_mu);
      old->checkpoint_end = old_end;
    }
    if (auto r = retention(); !r) log().warn("log {}: retention: {}", dir.string(), r.error().message());
    seg = active_segment();
    b.stage = 2;
  }
  if (b.stage == 2) {
    if (auto w = write_part(all.subspan(split)); !w) return w;
    b.stage = 3;
  }
  return {};
}

void LogCore::writer_main() {
  using clock = std::chrono::steady_clock;
  const bool always = opt.fsync.mode == FsyncMode::always;
  const bool every = opt.fsync.mode == FsyncMode::every;
  std::unique_lock lk(mu);
  auto last_sync = clock::now();
  bool unsynced = false;  ///< written since the last fdatasync started
  // every:MS: an fdatasync every MS runs in the background (the writes go on beside it; the
  // buffer would fill while the writer waited). A failed one is retried inline, as before.
  bool sync_running = false;
  std::uint64_t sync_running_gen = 0;  ///< the batches it covers
  bool sync_failed = false;
  auto sync_due = [&] {
    return every && unsynced && !sync_running && clock::now() >= last_sync + opt.fsync.interval;
  };
  auto settle_sync = [&](bool wait) {
    const auto res = background_sync_result(wait);
    if (!res) return;
    sync_running = false;
    if (*res < 0) {
      log().warn("log {}: fdatasync {}: {}; retrying", dir.string(), segs.back()->path.filename().string(),
                 std::strerror(-*res));
      sync_failed = true;
      unsynced = true;
      return;
    }
    ++st_fsyncs;
    synced_gen = std::max(synced_gen, sync_running_gen);
    append_cv.notify_all();
  };
  // Group commit under `always`: with a buffer swapped out the moment the previous write
  // ends, N concurrent appenders settle into two alternating halves (N/2 per fsync). Waiting
  // a moment for as many appenders as the last round had (those just released come straight
  // back) lets one fsync carry all N. One appender: it is already there, so no wait.
  auto batch_done = clock::now();
  clock::duration delay{};
  int polls_left = 0;  ///< every/never: empty rounds to poll before napping until woken
  for (;;) {
    if (stuck) {
      // A full disk: retry the kept batch every 100 ms (or once more when closing).
      writer_cv.wait_for(lk, std::chrono::milliseconds(100), [&] { return stopping; });
    } else {
      // every/never: a batch is due once it is big, old, or someone waits for it.
      auto batch_due = [&] {
        return !active.empty() && (always || active.bytes.size() >= coalesce_bytes || flush_request >= active.gen ||
                                   sync_request > synced_gen || clock::now() >= active_since + coalesce_delay);
      };
      auto ready = [&] {
        return stopping || batch_due() || sync_request > synced_gen || sync_due() || sync_failed ||
               (sync_running && io_uring_cq_ready(&ring) > 0) ||
               (always && (queue.load(std::memory_order_relaxed) != nullptr || !carry.empty()));
      };
      while (!ready()) {
        auto until = clock::time_point::max();
        if (every && unsynced && !sync_running) until = last_sync + opt.fsync.interval;
        if (sync_running) until = std::min(until, clock::now() + coalesce_delay);  // look for its end
        if (!always && !active.empty()) until = std::min(until, active_since + coalesce_delay);
        // every/never while records flow: look again in coalesce_delay rather than be woken
        // by the next append. A wake-up from the publishing thread tends to put this thread
        // on the publisher's core, preempting it, while the other core idles.
        if (!always && polls_left > 0) {
          --polls_left;
          until = std::min(until, clock::now() + coalesce_delay);
        }
        writer_napping = until == clock::time_point::max() || until > clock::now() + coalesce_delay;
        if (until == clock::time_point::max()) {
          writer_cv.wait(lk);
        } else {
          writer_cv.wait_until(lk, until);
        }
        writer_napping = false;
      }
    }
    if (always) {
      auto gathered = [&] {
        const auto want = want_records.load(std::memory_order_relaxed);
        return stopping || static_cast<std::int64_t>(active.records()) + queued.load() >= want;
      };
      if (!stopping && want_records.load(std::memory_order_relaxed) > 1 && !gathered()) {
        writer_cv.wait_until(lk, batch_done + delay, gathered);
      }
      // Once stopping, the queue is sealed here: later appends fail as closed, and the loop
      // ends only when everything taken was written (or failed) and settled.
      take_queued(stopping);
    }
    if (inflight.empty() && !active.empty()) {
      std::swap(active, inflight);
      std::swap(active_reqs, inflight_reqs);
      active.gen = ++gen_counter;
    }
    if (sync_running) settle_sync(stopping);
    if (stopping && inflight.empty() && !unsynced) break;
    const bool sync_now = always || stopping || sync_request > synced_gen || sync_failed;
    const bool have = !inflight.empty();
    const bool sync_behind = !sync_now && every && !sync_running && (have || unsynced) &&
                             clock::now() >= last_sync + opt.fsync.interval;
    const auto write_start = clock::now();
    lk.unlock();
    Result<void> r;
    if (have) {
      r = write_batch(inflight, sync_now);
    } else if (sync_now && unsynced) {
      r = fdatasync_active();
    }
    const bool sync_started = r && sync_behind && start_background_sync();
    // always: the appenders are released before mu is taken (they wait for nothing else);
    // those already queued again are counted apart from the ones released.
    const std::int64_t queued_before = always ? queued.load() : 0;
    if (always && r) settle(inflight_reqs, nullptr, 0);
    lk.lock();
    if (r) {
      if (have) {
        done_gen = inflight.gen;
        if (always) {
          // The appenders of this round and those that queued meanwhile.
          want_records.store(static_cast<std::int64_t>(inflight.records() + active.records()) +
                                 std::max<std::int64_t>(queued_before, 0),
                             std::memory_order_relaxed);
          batch_done = clock::now();
          delay = std::min<clock::duration>(std::chrono::microseconds(100), (batch_done - write_start) / 4);
        }
        inflight.clear();
        unsynced = true;
        polls_left = 2;
      }
      committed_seq = visible_seq.load();
      if (stuck) log().warn("log {}: writes resumed", dir.string());
      stuck.reset();
      if (sync_now) {
        synced_gen = done_gen;
        last_sync = clock::now();
        unsynced = false;
        sync_failed = false;
      } else if (sync_started) {
        sync_running = true;
        sync_running_gen = done_gen;  // its writes completed before it was submitted
        last_sync = clock::now();
        unsynced = false;
      } else if (sync_behind) {
        sync_failed = true;  // no room in the ring (cannot happen with one write in flight): inline next round
      }
      append_cv.notify_all();
      continue;
    }
    if (r.error().code == Errc::no_space) ++st_no_space;
    if (always) {
      // Nothing after the last durable record is kept: its appenders get the error and the
      // sequences are handed out again, so the log stays gapless.
      // (Under a roll the part before the new segment may have been written and synced.)
      const std::uint64_t from = visible_seq.load() + 1;
      ++fail_epoch;
      last_failure = r.error();
      settle(inflight_reqs, &r.error(), from);
      settle(active_reqs, &r.error(), from);
      committed_seq = from - 1;
      next_seq = from;
      inflight.clear();
      active.clear();
      done_gen = active.gen;
      active.gen = ++gen_counter;
      tail_end = file_end;
      {
        std::lock_guard g(seg_mu);
        tail_records = segs.back()->records;
      }
      append_cv.notify_all();
      continue;
    }
    if (!stuck) log().warn("log {}: {}; appends fail until it can be written", dir.string(), r.error().message());
    stuck = r.error();
    append_cv.notify_all();
    if (stopping) break;  // close() reports what could not be written
  }
}

void LogCore::take_queued(bool seal) {
  QueuedAppend* got = queue.exchange(seal ? &queue_sealed : nullptr, std::memory_order_acquire);
  if (got == &queue_sealed) got = nullptr;
  // The stack has the newest on top: behind those already waiting, oldest first.
  const std::size_t at = carry.size();
  std::int64_t n = 0;
  for (; got != nullptr; got = got->next, ++n) carry.insert(carry.begin() + static_cast<std::ptrdiff_t>(at), got);
  if (n > 0) queued.fetch_sub(n, std::memory_order_relaxed);
  std::vector<QueuedAppend*> refused;
  while (!carry.empty()) {
    QueuedAppend* q = carry.front();
    bool need_roll = false;
    if (!room_for(logfmt::record_size(q->body.size()), need_roll)) break;  // the next batch takes it
    carry.pop_front();
    if (q->expect_sequence != 0 && q->expect_sequence != next_seq) {
      q->error = fail(Errc::invalid_argument, "expected to append sequence " + std::to_string(q->expect_sequence) +
                                                  " but the log is at " + std::to_string(next_seq))
                     .error();
      refused.push_back(q);
      continue;
    }
    q->seq = add_record(q->body, q->publisher_id, q->timestamp_ns, need_roll);
    active_reqs.push_back(q);
  }
  if (!refused.empty()) settle(refused, nullptr, 0);
}

void LogCore::settle(std::vector<QueuedAppend*>& reqs, const Error* error, std::uint64_t from) {
  if (reqs.empty()) return;
  for (QueuedAppend* q : reqs) {
    if (error != nullptr && q->seq >= from) q->error = *error;
    q->settled.store(true, std::memory_order_release);  // the last this thread touches of it
  }
  reqs.clear();
  settle_progress.fetch_add(1, std::memory_order_release);
  settle_progress.notify_all();
}

Result<void> LogCore::stop_writer() {
  {
    std::lock_guard g(mu);
    if (closed) return {};
    stopping = true;
  }
  writer_cv.notify_all();
  if (writer.joinable()) writer.join();
  Result<void> result;
  std::uint64_t lost = 0;
  {
    std::lock_guard g(mu);
    if (stuck) {
      lost = next_seq - 1 - committed_seq;
      result = fail(stuck->code, std::to_string(lost) + " appended records could not be written: " + stuck->detail,
                    stuck->sys);
    }
  }
  if (!stuck && direct_fd >= 0) {
    // What the last direct write padded is cut, and that is synced (every policy syncs at close).
    auto c = cut_padding();
    if (c && ::fdatasync(fd) != 0) c = fail(errc_for(errno), "fsync " + segs.back()->path.filename().string(), errno);
    if (!c) result = c;
  }
  if (!stuck) {
    const auto seg = active_segment();
    if (auto w = write_index(*seg, file_end); !w) {
      result = w;
    } else {
      std::lock_guard g(seg_mu);
      seg->checkpoint_end = file_end;
    }
  }
  {
    std::lock_guard g(mu);
    closed = true;
  }
  // Another process may open the directory for writing from now on.
  if (fd >= 0) ::close(fd);
  fd = -1;
  if (direct_fd >= 0) ::close(direct_fd);
  direct_fd = -1;
  if (lock_fd >= 0) ::close(lock_fd);
  lock_fd = -1;
  append_cv.notify_all();
  { std::lock_guard g(vis_mu); }
  vis_cv.notify_all();
  return result;
}

}  // namespace rill::detail
