// The shared state behind Log and LogReader, and the writer thread's batch.
#pragma once

#include <liburing.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "policies/asymmetric_gate.hpp"
#include "format.hpp"
#include "rill/log.hpp"

namespace rill::detail {

/// One segment file. Atomics are what readers look at without the segment lock; the
/// metadata below them is guarded by LogCore::seg_mu and written by the writer thread.
struct LogSegment {
  std::filesystem::path path;
  std::uint64_t base_seq = 0;
  std::atomic<std::uint64_t> last_seq{0};  ///< last visible record (base_seq - 1: none)
  std::atomic<std::uint64_t> end{0};       ///< visible bytes (header + whole records)
  std::atomic<bool> sealed{false};         ///< no record will be added

  std::uint64_t records = 0;
  std::int64_t first_ts = 0;
  std::int64_t max_ts = INT64_MIN;
  std::uint64_t checkpoint_end = 0;  ///< bytes the index file vouches for
  std::uint64_t next_index_at = 0;   ///< offset past which the next index entry is taken
  std::vector<logfmt::IndexEntry> index;

  /// Adds a record's metadata (seg_mu held, or the segment not shared yet).
  void note_record(const logfmt::RecordView& r, std::size_t interval);
  [[nodiscard]] logfmt::IndexFile index_file(std::uint64_t end_offset) const;
};

/// A growable byte buffer that does not zero what it hands out (records overwrite it at once).
struct ByteBuf {
  std::unique_ptr<std::byte[]> p;
  std::size_t n = 0;
  std::size_t cap = 0;

  void reserve(std::size_t c) {
    if (c <= cap) return;
    auto q = std::make_unique_for_overwrite<std::byte[]>(c);
    if (n > 0) std::memcpy(q.get(), p.get(), n);
    p = std::move(q);
    cap = c;
  }
  std::byte* grow(std::size_t add) {
    if (n + add > cap) reserve(std::max(cap * 2, n + add));
    std::byte* at = p.get() + n;
    n += add;
    return at;
  }
  [[nodiscard]] std::size_t size() const noexcept { return n; }
  [[nodiscard]] bool empty() const noexcept { return n == 0; }
  [[nodiscard]] std::span<const std::byte> span() const noexcept { return {p.get(), n}; }
  [[nodiscard]] std::span<std::byte> span() noexcept { return {p.get(), n}; }
  void clear() noexcept { n = 0; }
};

/// O_DIRECT writes go in whole, aligned blocks: the records of a batch are copied behind
/// the bytes already in the file's last, partial block and padded with zeros to the next
/// block. The partial block stays here for the next write (`at` is its file offset).
struct DirectBuf {
  static constexpr std::size_t block = 4096;
  std::unique_ptr<std::byte, decltype(&std::free)> p{nullptr, &std::free};
  std::size_t cap = 0;
  std::uint64_t at = UINT64_MAX;  ///< file offset of p[0] when it holds that block's head

  /// Keeps the first `keep` bytes.
  [[nodiscard]] bool reserve(std::size_t want, std::size_t keep) noexcept {
    if (want <= cap) return true;
    const std::size_t c = std::max(want, cap * 2);
    auto* q = static_cast<std::byte*>(std::aligned_alloc(block, (c + block - 1) & ~(block - 1)));
    if (q == nullptr) return false;
    if (keep > 0) std::memcpy(q, p.get(), keep);
    p.reset(q);
    cap = c;
    return true;
  }
};

/// Records appended since the last swap, bound for one write (two around a segment roll).
struct LogBatch {
  ByteBuf bytes;
  std::size_t roll_at = SIZE_MAX;  ///< bytes from here go to a new segment starting at roll_base
  std::uint64_t roll_base = 0;
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t gen = 0;
  int stage = 0;  ///< 0 first part, 1 roll, 2 second part, 3 done (a retry resumes here)

  [[nodiscard]] bool empty() const noexcept { return bytes.empty(); }
  [[nodiscard]] std::uint64_t records() const noexcept { return empty() ? 0 : last_seq - first_seq + 1; }
  void clear() noexcept {
    bytes.clear();
    roll_at = SIZE_MAX;
    first_seq = last_seq = 0;
    stage = 0;
  }
};

/// always: one appender's record, on the appender's stack while it waits. The writer thread
/// adds it to the batch, writes and syncs it, then settles it (sequence or error).
struct QueuedAppend {
  std::span<const std::byte> body;
  std::uint64_t publisher_id = 0;
  std::int64_t timestamp_ns = 0;
  std::uint64_t expect_sequence = 0;
  QueuedAppend* next = nullptr;  ///< the one pushed before it
  std::uint64_t seq = 0;         ///< written by the writer before settled
  std::optional<Error> error;    ///< ditto: the record was not written
  std::atomic<bool> settled{false};
};

/// every/never: a batch is written once it holds this many bytes, or this long after its first record.
inline constexpr std::size_t coalesce_bytes = 256u << 10;
inline constexpr std::chrono::microseconds coalesce_delay{1000};

struct LogCore {
  std::filesystem::path dir;
  LogOptions opt;
  std::uint64_t publisher_id = 0;
  LogRecovery recovery;
  int lock_fd = -1;

  // Segments, oldest first. Guarded by seg_mu (readers take it only to change segment).
  mutable std::mutex seg_mu;
  std::deque<std::shared_ptr<LogSegment>> segs;
  std::atomic<std::uint64_t> first_seq{1};
  alignas(64) std::atomic<std::uint64_t> visible_seq{0};  ///< written per batch by the writer

  // Readers waiting for records.
  std::mutex vis_mu;
  std::condition_variable vis_cv;
  std::atomic<int> vis_waiters{0};

  // The append side. Guarded by mu; on cache lines of its own, away from what the writer
  // thread and readers write per batch.
  // With single_appender (and not fsync always) the appender usually enters through mu's
  // gate instead of locking it (GatedMutex): every other holder of mu excludes it as well.
  alignas(64) GatedMutex mu;
  std::condition_variable_any append_cv;  ///< appenders: space in the buffer, their batch done
  std::condition_variable_any writer_cv;  ///< the writer: work to do
  LogBatch active;
  LogBatch inflight;
  std::uint64_t next_seq = 1;
  std::uint64_t tail_end = 0;      ///< active segment's size once everything buffered is written
  std::uint64_t tail_records = 0;  ///< records in the active segment, buffered ones included
  std::uint64_t gen_counter = 1;
  std::uint64_t done_gen = 0;    ///< batches up to this one are written (or failed)
  std::uint64_t synced_gen = 0;  ///< ... and synced
  std::uint64_t sync_request = 0;
  std::uint64_t committed_seq = 0;  ///< last sequence written (and synced under always)
  std::uint64_t fail_epoch = 0;    ///< always: batches that failed (flush() callers look)
  std::optional<Error> last_failure;
  std::optional<Error> stuck;  ///< every/never: a write failed; its batch is kept and retried
  /// every/never: the writer lets a batch grow to coalesce_bytes or for coalesce_delay after
  /// its first record (one wake-up and one write per batch, not per few appends).
  std::chrono::steady_clock::time_point active_since{};
  std::uint64_t flush_request = 0;  ///< flush() wants batches up to this generation written now
  /// every/never: the writer sleeps until woken (or longer than coalesce_delay); an append to
  /// an empty buffer wakes it. Otherwise it looks at the buffer by itself within coalesce_delay.
  bool writer_napping = false;
  bool stopping = false;
  bool closed = false;
  std::thread writer;

  std::atomic<std::uint64_t> st_appends{0};  ///< written under mu (a plain load and store, no locked add)

  // always: appenders do not take mu. Each pushes its record onto `queue` (a lock-free stack
  // of QueuedAppend) and sleeps on `settle_progress` until the writer thread has added it to
  // a batch, written, synced and settled it (flat combining). Sixteen appenders woken at once
  // would otherwise queue for mu one after the other, a sleep and a wake-up each, and that
  // hand-off, not the fsync, set the length of a group-commit round on a fast disk.
  alignas(64) std::atomic<QueuedAppend*> queue{nullptr};
  std::atomic<std::int64_t> queued{0};       ///< pushed, not yet taken (a hint for waking the writer)
  std::atomic<std::int64_t> want_records{0};  ///< the writer waits briefly for this many appenders
  alignas(64) std::atomic<std::uint32_t> settle_progress{0};
  /// Pushed once the writer stops: an append finding it on top fails as closed.
  static inline QueuedAppend queue_sealed{};

  /// always: the appender's side; returns once `q` is settled.
  Result<std::uint64_t> append_queued(QueuedAppend& q);
  /// Whether a record of `size` bytes goes into the active buffer now, and whether it starts
  /// a new segment (mu held).
  [[nodiscard]] bool room_for(std::size_t size, bool& need_roll) const noexcept;
  /// Adds a record to the active buffer (mu held, room_for said yes); its sequence.
  std::uint64_t add_record(std::span<const std::byte> body, std::uint64_t pid, std::int64_t ts, bool need_roll);

  // Owned by the writer thread (and by open/close when it does not run).
  alignas(64) int fd = -1;
  std::uint64_t file_end = 0;
  int direct_fd = -1;           ///< direct_io: the active segment opened with O_DIRECT, for the writes
  DirectBuf direct;             ///< direct_io: whole blocks on their way to the file
  bool direct_refused = false;  ///< the filesystem said no once: the page cache from then on
  io_uring ring{};
  bool ring_ok = false;
  /// every:MS: the periodic fdatasync runs in the background while the writes go on; its
  /// completion (user_data background_sync_tag) may be reaped inside write_at.
  static constexpr std::uint64_t background_sync_tag = 3;
  std::optional<int> background_sync_res;
  // always: requests taken from `queue` that did not fit in the buffer yet (oldest first),
  // and those whose records are in the active and the in-flight batch.
  std::deque<QueuedAppend*> carry;
  std::vector<QueuedAppend*> active_reqs;
  std::vector<QueuedAppend*> inflight_reqs;

  std::atomic<std::uint64_t> st_batches{0}, st_fsyncs{0}, st_bytes{0}, st_no_space{0}, st_deleted{0};
  std::atomic<bool> st_direct{false};

  ~LogCore();

  // log_open.cpp
  Result<void> recover();
  Result<void> create_segment(std::uint64_t base_seq);  ///< new file, header synced; becomes the active one
  Result<void> write_index(const LogSegment& seg, std::uint64_t end_offset);
  Result<std::size_t> retention();

  // log.cpp
  Result<void> refresh();  ///< read-only: pick up records and segments another process appended

  // log_writer.cpp
  Result<void> start_writer();
  void writer_main();
  Result<void> write_batch(LogBatch& b, bool sync);
  Result<void> write_at(int wfd, std::span<const std::byte> data, std::uint64_t offset, bool sync);
  Result<void> write_direct(std::span<const std::byte> part, bool sync);
  void open_direct(const std::filesystem::path& path);  ///< direct_io: direct_fd for the new active segment
  Result<void> cut_padding();  ///< direct_io: the file ends at file_end again (before a roll or close)
  Result<void> fdatasync_active();
  bool start_background_sync();  ///< an fdatasync of the active segment, not waited for
  /// Its result (0 or -errno) once it ended; with `wait`, waits for it.
  std::optional<int> background_sync_result(bool wait);
  void publish(std::span<const std::byte> part, const std::shared_ptr<LogSegment>& seg, std::uint64_t start);
  /// always: takes what `queue` holds into the active batch, as far as it fits (mu held);
  /// with `seal`, no append gets in after it.
  void take_queued(bool seal);
  /// always: hands `reqs` their outcome (nullptr: written) and wakes their appenders.
  /// With an error, those from sequence `from` on failed (the rest were written).
  void settle(std::vector<QueuedAppend*>& reqs, const Error* error, std::uint64_t from);
  Result<void> stop_writer();

  [[nodiscard]] std::shared_ptr<LogSegment> active_segment() const {
    std::lock_guard g(seg_mu);
    return segs.back();
  }
  /// The segment holding `seq` (or the first one after it); nullptr past the end.
  [[nodiscard]] std::shared_ptr<LogSegment> segment_for(std::uint64_t seq) const;
};

// The append path's two steps, shared by Log::append (every/never) and the writer thread
// taking queued appends (always). Inline: they are on the publishing thread's hot path.

inline bool LogCore::room_for(std::size_t size, bool& need_roll) const noexcept {
  need_roll = tail_records > 0 && tail_end + size > opt.segment_bytes;
  const bool fits = active.empty() || active.bytes.size() + size <= opt.buffer_bytes;
  return fits && !(need_roll && active.roll_at != SIZE_MAX);
}

inline std::uint64_t LogCore::add_record(std::span<const std::byte> body, std::uint64_t pid, std::int64_t ts,
                                         bool need_roll) {
  const std::size_t size = logfmt::record_size(body.size());
  if (need_roll) {
    active.roll_at = active.bytes.size();
    active.roll_base = next_seq;
    tail_end = logfmt::segment_header_bytes;
    tail_records = 0;
  }
  const std::uint64_t seq = next_seq++;
  logfmt::encode_record_unsealed(active.bytes.grow(size), seq, pid, ts, body);  // sealed by the writer
  // Ask for the next records' cache lines now: the writer's core read them last batch.
  for (std::size_t at = active.bytes.n + 256; at < active.bytes.n + 512 && at < active.bytes.cap; at += 64) {
    __builtin_prefetch(active.bytes.p.get() + at, 1, 3);
  }
  if (active.first_seq == 0) active.first_seq = seq;
  active.last_seq = seq;
  tail_end += size;
  ++tail_records;
  st_appends.store(st_appends.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  return seq;
}

/// "segment 000..1.log at offset N: <what>" for corruption errors.
[[nodiscard]] Error corrupt_at(const std::filesystem::path& seg, std::uint64_t offset, std::string_view what);

/// Maps a whole file read-only (nullptr span for an empty file); unmapped on destruction.
class FileMap {
 public:
  FileMap() = default;
  FileMap(FileMap&& o) noexcept : m_data(std::exchange(o.m_data, nullptr)), m_size(std::exchange(o.m_size, 0)) {}
  FileMap& operator=(FileMap&& o) noexcept;
  ~FileMap();
  [[nodiscard]] static Result<FileMap> map(const std::filesystem::path& path, std::size_t at_least = 0);
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {m_data, m_size}; }

 private:
  const std::byte* m_data = nullptr;
  std::size_t m_size = 0;
};

}  // namespace rill::detail

namespace rill {

/// A reader's position: the segment it is in (mapped by the reader itself), the offset of
/// the record at `pos`, and what it has lost to retention.
struct LogReader::State {
  std::shared_ptr<detail::LogCore> core;
  std::shared_ptr<detail::LogSegment> seg;
  detail::FileMap map;
  std::uint64_t pos = 1;
  std::size_t off = 0;
  std::uint64_t lost = 0;

  Result<void> enter(std::shared_ptr<detail::LogSegment> s);
};

}  // namespace rill
