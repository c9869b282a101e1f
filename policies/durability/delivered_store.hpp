// DeliveredStore: a durable subscription's exactly-once state, one small mmap'ed file per
// durable name (layout in PROTOCOL.md section 14).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "mapped_file.hpp"
#include "rill/error.hpp"

namespace rill::detail {

/// Per publisher: what the handler finished, and what it was inside when the process died.
struct DeliveredEntry {
  std::uint64_t publisher_id;  // 0: free slot
  std::uint64_t delivered;     // the handler returned for this sequence (and everything before it)
  std::uint64_t pending;       // the handler was called for this sequence and has not returned (0: none)
  std::uint64_t stamp;         // last use, for eviction (larger = more recent)
};
static_assert(sizeof(DeliveredEntry) == 32);

/// The file, mapped MAP_SHARED: every store lands in the page cache at once, so it survives
/// kill -9 of this process without a system call; sync() makes it survive power loss.
/// Held with flock(LOCK_EX) while open: one process per durable name.
class DeliveredStore {
 public:
  static constexpr std::uint32_t capacity = 256;  // publishers remembered; the oldest is evicted

  /// Opens (or creates) `dir/<name>.rill-state`. address_in_use when another process holds
  /// it; corrupt (naming the file) when it is not a state file of this version.
  [[nodiscard]] static Result<DeliveredStore> open(const std::filesystem::path& dir, const std::string& name);

  DeliveredStore(DeliveredStore&&) noexcept = default;
  DeliveredStore& operator=(DeliveredStore&&) noexcept = default;
  ~DeliveredStore() = default;

  /// Every slot (free ones have publisher_id 0).
  [[nodiscard]] std::span<DeliveredEntry> entries() noexcept { return {m_entries, capacity}; }
  /// The slot of `publisher_id`; a new one (evicting the least recently used) when it has none.
  DeliveredEntry& slot(std::uint64_t publisher_id) noexcept;
  /// The slot of `publisher_id` if it has one.
  [[nodiscard]] DeliveredEntry* find(std::uint64_t publisher_id) noexcept;

  /// The handler is about to run for `seq`.
  static void begin(DeliveredEntry& e, std::uint64_t seq) noexcept { store(e.pending, seq); }
  /// The handler returned for `seq` (or gave up on it): delivered first, then pending cleared,
  /// so a crash between the two leaves pending <= delivered, which means "done".
  static void finish(DeliveredEntry& e, std::uint64_t seq) noexcept {
    store(e.delivered, seq);
    store(e.pending, 0);
  }
  /// msync(MS_SYNC): what is stored now survives power loss.
  [[nodiscard]] Result<void> sync() noexcept { return m_file.sync(); }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return m_file.path(); }

 private:
  explicit DeliveredStore(MappedFile file) noexcept : m_file(std::move(file)) {}
  // Release stores: the compiler keeps their order, which is what a kill -9 observes.
  static void store(std::uint64_t& field, std::uint64_t v) noexcept {
    std::atomic_ref<std::uint64_t>(field).store(v, std::memory_order_release);
  }

  MappedFile m_file;
  DeliveredEntry* m_entries = nullptr;
  std::uint64_t* m_next_stamp = nullptr;
};

}  // namespace rill::detail
