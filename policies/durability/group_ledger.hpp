// GroupLedger: what the members of a durable consumer group on one host have handled,
// shared by all of them through one mmap'ed file (STATE_DIR/<group name>.rill-group,
// layout in PROTOCOL.md section 15). A message the publisher hands to a survivor after a
// member died is looked up here first: if the dead member finished it, the survivor skips
// it, so each message reaches exactly one member's handler.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>

#include "mapped_file.hpp"
#include "rill/error.hpp"

namespace rill::detail {

class GroupLedger {
 public:
  static constexpr std::uint32_t member_slots = 64;  // members of one group on one host at once
  static constexpr std::uint32_t publishers = 16;    // publisher ids remembered
  static constexpr std::uint32_t window = 1u << 19;  // sequences per publisher (a ring)

  /// What begin() found for a message.
  enum class Verdict {
    handle,     ///< nobody handled it: call the handler, then finish()
    done,       ///< a member finished it: skip it
    in_doubt,   ///< a member died inside the handler for it: the application decides
    untracked,  ///< the ledger cannot say (window or publisher table exceeded): handle it
  };
  struct Claim {
    Verdict verdict = Verdict::untracked;
    std::uint64_t* cell = nullptr;  // where finish() records it (nullptr: untracked)
    std::uint64_t begun = 0;        // the value begin() stored there
  };

  /// Opens (or creates) `dir/<name>.rill-group` and takes a member slot in it.
  /// address_in_use when all member slots are taken by live processes.
  [[nodiscard]] static Result<GroupLedger> open(const std::filesystem::path& dir, const std::string& name);

  GroupLedger(GroupLedger&&) noexcept = default;
  GroupLedger& operator=(GroupLedger&&) noexcept = default;
  ~GroupLedger() = default;

  /// Marks (publisher_id, seq) as being handled by this member, unless another member
  /// has finished it or died inside its handler. Waits (up to a few seconds) while a live
  /// member is inside its handler for the same message.
  [[nodiscard]] Claim begin(std::uint64_t publisher_id, std::uint64_t seq);
  /// Records that the handler returned (or gave up) for a claimed message.
  void finish(const Claim& claim) noexcept;
  /// msync(MS_SYNC): what is recorded now survives power loss.
  [[nodiscard]] Result<void> sync() noexcept;

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return m_file.path(); }
  [[nodiscard]] std::uint32_t member() const noexcept { return m_slot; }
  /// How many begin() calls found a live member inside its handler and waited for it. Safe
  /// to read from another thread while begin() waits: a test proves the wait happened.
  [[nodiscard]] std::uint64_t live_waits() const noexcept {
    return std::atomic_ref<std::uint64_t>(m_live_waits).load(std::memory_order_acquire);
  }

 private:
  explicit GroupLedger(MappedFile file) noexcept : m_file(std::move(file)) {}
  std::uint64_t* cells_of(std::uint64_t publisher_id) noexcept;
  // True while the member that stored `value` still runs (its slot's lock is held and
  // the slot was not taken over since).
  [[nodiscard]] bool owner_alive(std::uint64_t value) const noexcept;

  MappedFile m_file;
  std::uint32_t m_slot = 0;
  std::uint32_t m_generation = 0;
  bool m_full_logged = false;
  bool m_window_logged = false;
  mutable std::uint64_t m_live_waits = 0;  // atomic_ref: read by live_waits() from any thread
};

}  // namespace rill::detail
