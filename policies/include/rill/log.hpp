// The persistent log: a segmented, append-only, checksummed record log in one directory,
// written through io_uring with group commit. The storage under persistent(DIR) durability.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rill/error.hpp"

namespace rill {

namespace detail {
struct LogCore;
struct LogSegment;
}  // namespace detail

/// When appended records are forced to stable storage (README "Persistent log" says what each loses).
enum class FsyncMode : std::uint8_t {
  always,  ///< append() returns once its record is written and fdatasync'ed (batched: group commit)
  every,   ///< append() returns once the record is in the log's buffer; fdatasync every `interval`
  never,   ///< like every, but only sealed segments are synced; the kernel writes back when it likes
};

/// An fsync mode and, for `every`, its interval. CLI form: "always", "every:MS", "never".
struct FsyncPolicy {
  FsyncMode mode = FsyncMode::every;
  std::chrono::milliseconds interval{10};

  static constexpr FsyncPolicy always() { return {FsyncMode::always, {}}; }
  static constexpr FsyncPolicy every(std::chrono::milliseconds ms) { return {FsyncMode::every, ms}; }
  static constexpr FsyncPolicy never() { return {FsyncMode::never, {}}; }
};

/// Parses "always", "every:MS" (MS >= 1) or "never".
[[nodiscard]] Result<FsyncPolicy> parse_fsync_policy(std::string_view text);
/// The CLI form, e.g. "every:10".
[[nodiscard]] std::string to_string(const FsyncPolicy& policy);

/// How a log is opened; fill with designated initializers.
struct LogOptions {
  FsyncPolicy fsync{};
  std::size_t segment_bytes = 64u << 20;         ///< roll to a new segment past this size
  std::size_t index_interval_bytes = 64u << 10;  ///< sparse index: one entry per this many bytes
  std::size_t max_record_bytes = 64u << 20;      ///< larger bodies are refused (too_large)
  std::size_t buffer_bytes = 4u << 20;           ///< group-commit buffer; a full one makes append() wait
  std::uint64_t retention_bytes = 0;             ///< delete the oldest sealed segments past this total (0: keep)
  std::chrono::milliseconds retention_age{0};    ///< delete sealed segments whose newest record is older (0: keep)
  std::uint64_t publisher_id = 0;  ///< id recorded in a new log (0: random); an existing log keeps its own
  /// Write segments with O_DIRECT: no copy into the page cache, so far less CPU per record
  /// (PROTOCOL.md, "Persistent log"). Readers then read from the disk rather than from
  /// memory. Where the filesystem refuses O_DIRECT (tmpfs on older kernels) the log says
  /// so once and writes through the page cache.
  bool direct_io = false;
  /// The caller promises that appends never overlap (one thread, or callers that exclude
  /// each other, as a Publisher does). The appender then takes no lock per record under
  /// every/never; the writer thread excludes it with membarrier(2) instead. Ignored under
  /// always (appenders wait for their fsync together there).
  bool single_appender = false;
  bool read_only = false;          ///< inspect only: nothing is cut, created or written
  bool verify_all = false;         ///< check every record of every segment at open, not only past the checkpoints
};

/// What open() found and did; logged once at open too.
struct LogRecovery {
  std::size_t segments = 0;
  std::uint64_t records_scanned = 0;  ///< records checked at open (the rest were covered by checkpoints)
  std::size_t indexes_rebuilt = 0;    ///< index files that were missing or damaged and were rebuilt from a scan
  bool torn_tail = false;             ///< the last segment ended in a partial or damaged record
  std::string torn_segment;           ///< its file name
  std::uint64_t torn_offset = 0;      ///< where the valid data ends (the file was cut there unless read_only)
  std::uint64_t torn_bytes = 0;       ///< bytes past that point
  std::string torn_reason;
  bool removed_empty_segment = false;  ///< a last segment with no valid header (crash while creating it) was removed
};

/// One stored record, read in place. Valid until the reader's next call that moves it.
struct LogRecord {
  std::uint64_t sequence = 0;
  std::uint64_t publisher_id = 0;
  std::int64_t timestamp_ns = 0;
  std::span<const std::byte> body;  ///< the envelope bytes, 8-byte aligned
};

/// One segment as list shows it.
struct LogSegmentInfo {
  std::string file;
  std::uint64_t base_seq = 0;
  std::uint64_t last_seq = 0;  ///< base_seq - 1 when empty
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;
  std::int64_t first_ts_ns = 0;
  std::int64_t max_ts_ns = 0;
  bool active = false;
};

/// Counters of the write path (atomics read without a lock).
struct LogStats {
  std::uint64_t appends = 0;
  std::uint64_t batches = 0;  ///< write submissions; appends / batches is the group-commit factor
  std::uint64_t fsyncs = 0;
  std::uint64_t bytes = 0;
  std::uint64_t no_space_errors = 0;
  std::uint64_t segments_deleted = 0;  ///< by retention
  bool direct = false;                 ///< the active segment is written with O_DIRECT (direct_io, and allowed)
};

/// Extra fields of an append.
struct AppendMeta {
  std::int64_t timestamp_ns = 0;      ///< 0: now (CLOCK_REALTIME)
  std::uint64_t publisher_id = 0;     ///< 0: the log's publisher id
  std::uint64_t expect_sequence = 0;  ///< non-zero: fail with invalid_argument unless this is the next sequence
};

/// Iterates a log's records from a position, zero copy; one thread at a time.
class LogReader {
 public:
  LogReader(LogReader&&) noexcept;
  LogReader& operator=(LogReader&&) noexcept;
  ~LogReader();

  /// The next record, or nullopt when none is visible yet. Every record is CRC-checked before
  /// it is returned; a failing one is an Errc::corrupt error naming the segment file and offset.
  /// Records deleted by retention under the reader are skipped and counted in lost().
  [[nodiscard]] Result<std::optional<LogRecord>> next();
  /// Waits up to `timeout` until a record is visible (in-process appends wake it at once;
  /// a read-only log re-reads the directory every few ms). True when next() has one.
  [[nodiscard]] Result<bool> wait(std::chrono::milliseconds timeout);
  /// Moves to sequence `seq` (to the first retained one if it was deleted; counted in lost()).
  [[nodiscard]] Result<void> seek(std::uint64_t seq);
  /// Moves to the first record with timestamp >= `ts_ns` (index-assisted; see PROTOCOL.md).
  [[nodiscard]] Result<void> seek_time(std::int64_t ts_ns);

  /// The sequence next() reads next.
  [[nodiscard]] std::uint64_t position() const noexcept;
  /// Records this reader skipped because retention deleted them before it read them.
  [[nodiscard]] std::uint64_t lost() const noexcept;

 private:
  friend class Log;
  struct State;
  explicit LogReader(std::unique_ptr<State> state);
  std::unique_ptr<State> m_state;
};

/// A log directory opened for appending (or read_only for inspection). Thread-safe: any number
/// of threads may append concurrently (their records are batched into one write + fsync).
class Log {
 public:
  /// Opens (creating if needed) the log in `dir`, recovering it: see LogRecovery. Corruption
  /// before the end of the last segment is Errc::corrupt naming the segment file and offset.
  [[nodiscard]] static Result<Log> open(const std::filesystem::path& dir, const LogOptions& options = {});

  Log(Log&&) noexcept;
  Log& operator=(Log&&) noexcept;
  /// close(), ignoring its result.
  ~Log();

  /// Appends one record and returns its sequence (1, 2, 3 ... with no gap). Under fsync
  /// `always` it returns once the record is durable. Errors: no_space (disk full: nothing of
  /// this record is stored; appends succeed again once space is freed), too_large, closed,
  /// invalid_argument (expect_sequence mismatch, or a read-only log), io_error.
  [[nodiscard]] Result<std::uint64_t> append(std::span<const std::byte> body, const AppendMeta& meta = {});
  /// Waits until every record appended so far has been handed to the kernel.
  [[nodiscard]] Result<void> flush();
  /// Waits until every record appended so far is durable (fdatasync'ed), whatever the policy.
  [[nodiscard]] Result<void> sync();
  /// Writes what is buffered, syncs, writes the checkpoint and stops the writer. Idempotent.
  [[nodiscard]] Result<void> close();

  /// A reader starting at `seq` (0: the first retained record).
  [[nodiscard]] Result<LogReader> reader(std::uint64_t seq = 0) const;

  /// Deletes whole sealed segments past the retention limits; returns how many.
  [[nodiscard]] Result<std::size_t> apply_retention();

  [[nodiscard]] std::uint64_t publisher_id() const noexcept;
  /// The sequence the next append gets (continues after a restart).
  [[nodiscard]] std::uint64_t next_sequence() const noexcept;
  /// The first retained sequence (next_sequence() when the log is empty).
  [[nodiscard]] std::uint64_t first_sequence() const noexcept;
  /// The last sequence readers can see (written, and synced under `always`); 0 when none.
  [[nodiscard]] std::uint64_t last_sequence() const noexcept;
  [[nodiscard]] std::vector<LogSegmentInfo> segments() const;
  [[nodiscard]] const LogRecovery& recovery() const noexcept;
  [[nodiscard]] LogStats stats() const noexcept;
  [[nodiscard]] const std::filesystem::path& directory() const noexcept;

 private:
  explicit Log(std::shared_ptr<detail::LogCore> core);
  std::shared_ptr<detail::LogCore> m_core;
};

}  // namespace rill
