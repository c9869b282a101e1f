// SequenceMark: the highest sequence a persistent publisher handed out, kept beside its log
// (DIR/sequence.mark, PROTOCOL.md section 13.6). Under fsync every/never a message may be sent
// before its record reaches the log; if the process dies then, the restarted publisher must
// not give those numbers to new messages (a durable subscriber that handled the originals
// would drop the new ones as duplicates). This file tells it where to go on from.
#pragma once

#include <cstdint>
#include <filesystem>

#include "mapped_file.hpp"
#include "rill/error.hpp"

namespace rill::detail {

class SequenceMark {
 public:
  /// How far to reserve ahead, synced, for a restart after a power loss.
  static constexpr std::uint64_t reserve_block = 1u << 16;

  /// Opens (or creates) `dir/sequence.mark`. corrupt (naming it) when it is not one.
  [[nodiscard]] static Result<SequenceMark> open(const std::filesystem::path& dir);

  SequenceMark(SequenceMark&&) noexcept = default;
  SequenceMark& operator=(SequenceMark&&) noexcept = default;
  ~SequenceMark() = default;

  /// The last sequence that may have been sent before this open: exact after a process
  /// crash (same boot), the synced reservation after a reboot; 0 for a new file.
  [[nodiscard]] std::uint64_t last_handed_out() const noexcept { return m_found; }

  /// Notes that `seq` is being handed out: a plain store into the mapping (survives kill -9);
  /// with `reserve`, an msync each time it passes the reservation (survives power loss).
  [[nodiscard]] Result<void> hand_out(std::uint64_t seq, bool reserve) noexcept;
  /// Everything up to `last` is accounted for (in the log): the next open starts there.
  [[nodiscard]] Result<void> settle(std::uint64_t last) noexcept;

 private:
  explicit SequenceMark(MappedFile file) noexcept : m_file(std::move(file)) {}

  MappedFile m_file;
  std::uint64_t m_found = 0;
  std::uint64_t m_reserved = 0;  // a copy of the synced reservation
};

}  // namespace rill::detail
