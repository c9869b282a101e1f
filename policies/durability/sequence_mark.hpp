// SequenceMark: the highest sequence a persistent publisher handed out, kept beside its log
// (DIR/sequence.mark, PROTOCOL.md section 13.6). Under fsync every/never a message may be sent
// before its record reaches the log; if the process dies then, the restarted publisher must
// not give those numbers to new messages (a durable subscriber that handled the originals
// would drop the new ones as duplicates). This file tells it where to go on from.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "mapped_file.hpp"
#include "rill/error.hpp"

namespace rill::detail {

class SequenceMark {
 public:
  /// How far to reserve ahead, synced, for a restart after a power loss.
  static constexpr std::uint64_t reserve_block = 1u << 16;
  /// A mark at or past this is damage, not a sequence: open() refuses it rather than have
  /// the publisher number on from the edge of the range.
  static constexpr std::uint64_t max_sequence = 1ull << 63;

  /// Opens (or creates) `dir/sequence.mark`. corrupt (naming it) when it is not one, or
  /// holds a sequence of max_sequence or more.
  [[nodiscard]] static Result<SequenceMark> open(const std::filesystem::path& dir);

  SequenceMark(SequenceMark&&) noexcept = default;
  SequenceMark& operator=(SequenceMark&&) noexcept = default;
  ~SequenceMark();

  /// The last sequence that may have been sent before this open: exact after a process
  /// crash (same boot), the synced reservation after a reboot; 0 for a new file.
  [[nodiscard]] std::uint64_t last_handed_out() const noexcept { return m_found; }

  /// Notes that `seq` is being handed out: a plain store into the mapping (survives kill -9).
  /// With `reserve`, `seq` must also be inside a synced reservation (survives power loss):
  /// a thread of the mark's own extends and syncs the reservation while the publisher is
  /// still half a block away from its end, so the publisher waits only if it outruns that.
  [[nodiscard]] Result<void> hand_out(std::uint64_t seq, bool reserve) noexcept;
  /// Everything up to `last` is accounted for (in the log): the next open starts there.
  [[nodiscard]] Result<void> settle(std::uint64_t last) noexcept;

 private:
  explicit SequenceMark(MappedFile file) noexcept : m_file(std::move(file)) {}

  // Extends the reservation off the publishing thread (msync takes milliseconds).
  struct Reserver {
    std::mutex mutex;
    std::condition_variable wake;    // the thread: a new target, or stop
    std::condition_variable synced;  // the publisher: the reservation moved
    std::uint64_t target = 0;        // reserve up to here (guarded by mutex)
    std::atomic<std::uint64_t> synced_to{0};
    std::optional<Error> error;  // guarded by mutex; sticky
    bool stop = false;
    std::thread thread;
  };
  Result<void> wait_reserved(std::uint64_t seq) noexcept;
  void stop_reserver() noexcept;

  MappedFile m_file;
  std::uint64_t m_found = 0;
  std::uint64_t m_requested = 0;  // the last target asked of the reserver
  std::unique_ptr<Reserver> m_reserver;
};

}  // namespace rill::detail
