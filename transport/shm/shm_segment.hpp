// Creating, opening and checking shared-memory segments; process liveness.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rill/endpoint.hpp"
#include "rill/error.hpp"
#include "shm_layout.hpp"

namespace rill::detail::shm {

/// One chunk pool asked for: chunks of `data_bytes` usable bytes (a 64-byte header is added).
struct PoolSpec {
  std::uint32_t data_bytes = 0;
  std::uint32_t count = 0;
};

/// Segment settings, from the endpoint's query string
/// (shm://NAME?slots=32&ring=1024&pools=448x33792,16320x1024&mode=0660&group=rill).
struct ShmOptions {
  std::string name;
  std::uint32_t slots = 32;     ///< subscriber slots (at most 63)
  std::uint32_t ring = 1024;    ///< ring entries per slot (power of two): the deepest policy queue
  std::vector<PoolSpec> pools;  ///< empty: defaults sized from slots and ring
  unsigned mode = 0600;         ///< file mode of the segment
  std::string group;            ///< group owning the segment (with mode 0660, say)
  bool verify = true;           ///< subscriber: run the FlatBuffers verifier on each envelope
};

/// Parses `ep` (scheme shm); a clear error names a bad key or value.
[[nodiscard]] Result<ShmOptions> parse_shm_options(const Endpoint& ep);

/// The path of an endpoint's directory, /dev/shm/rill.NAME.
[[nodiscard]] std::string directory_path(std::string_view name);
/// The path of one publisher's segment on endpoint NAME: /dev/shm/rill.NAME.<id, 16 hex digits>.
[[nodiscard]] std::string channel_path(std::string_view name, std::uint64_t publisher_id);

/// A file being made under a temporary name beside `path`: sized, every page allocated
/// (a full /dev/shm fails here, not later with SIGBUS), mapped read-write, mode and group
/// set from the options. publish_file() gives it its name; on failure it is removed.
struct NewFile {
  int fd = -1;
  std::string tmp;
  std::string path;
  std::byte* base = nullptr;
  std::size_t size = 0;
  ino_t inode = 0;
};
[[nodiscard]] Result<NewFile> create_file(const ShmOptions& options, const std::string& path, std::size_t size);
/// Undoes create_file (unmaps, closes, removes the temporary name).
void discard_file(NewFile& file) noexcept;
/// Links the finished file under its name (link(2): a reader never maps a half-built file,
/// and an existing name is never replaced). When the name exists, `judge` is shown the
/// old file: an error keeps it (returned, the new file discarded), none removes it as stale.
/// On success the temporary name is gone and the descriptor closed; the mapping stays.
[[nodiscard]] Result<void> publish_file(NewFile& file, const std::function<std::optional<Error>(int old_fd)>& judge);
/// Opens and maps an existing file read-write; not_connected when it does not exist,
/// permission_denied naming its mode and owner, malformed when under `min_size` bytes.
struct MappedFile {
  std::byte* base = nullptr;
  std::size_t size = 0;
  ino_t inode = 0;
};
[[nodiscard]] Result<MappedFile> open_file(const std::string& path, std::size_t min_size, std::string_view what);
/// Removes what dead processes left behind for endpoint NAME: temporary files of a creator
/// that died, and segments whose publisher is gone (a killed owner's channels).
void sweep_stale_files(std::string_view name);

/// Process start time (clock ticks since boot, /proc/PID/stat field 22); nullopt when
/// the process does not exist. Together with the pid it names a process uniquely.
[[nodiscard]] std::optional<std::uint64_t> process_start_time(pid_t pid);
/// True while process `pid` exists and is not a zombie.
[[nodiscard]] bool process_exists(pid_t pid);
/// True while process `pid` runs and started at `start` (a reused pid, or a zombie, is not alive).
[[nodiscard]] bool process_alive(std::uint32_t pid, std::uint64_t start);

/// A segment mapped into this process. Geometry is read from the header once, checked
/// against the file size, and kept here: later reads never trust the header again.
/// Reference-counted because received samples keep it mapped past their subscriber.
/// Thread-safe reference counting; everything else is owned by one thread.
class Mapping {
 public:
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  /// Creates a fresh segment for a publisher, channel_path(name, publisher_id); a stale
  /// one from a dead publisher is removed first; a live one is address_in_use.
  [[nodiscard]] static Result<Mapping*> create(const ShmOptions& options, std::uint64_t publisher_id,
                                               std::string_view topic);
  /// Maps publisher `publisher_id`'s segment (subscriber). not_connected when there is none.
  [[nodiscard]] static Result<Mapping*> open(const ShmOptions& options, std::uint64_t publisher_id);
  /// Maps the segment file at `path` (tests, tools).
  [[nodiscard]] static Result<Mapping*> open_path(const std::string& path);

  void retain() noexcept { m_refs.fetch_add(1, std::memory_order_relaxed); }
  /// Drops a reference; the last one unmaps.
  void release() noexcept;

  [[nodiscard]] SegmentHeader& header() const noexcept { return *reinterpret_cast<SegmentHeader*>(m_base); }
  [[nodiscard]] std::uint32_t slot_count() const noexcept { return m_slot_count; }
  [[nodiscard]] std::uint32_t ring_capacity() const noexcept { return m_ring_capacity; }
  [[nodiscard]] std::uint32_t chunk_count() const noexcept { return m_chunk_count; }
  [[nodiscard]] std::uint32_t class_count() const noexcept { return static_cast<std::uint32_t>(m_classes.size()); }
  [[nodiscard]] const PoolClass& pool(std::uint32_t c) const noexcept { return m_classes[c]; }
  [[nodiscard]] std::uint64_t publisher_id() const noexcept { return m_publisher_id; }
  [[nodiscard]] std::uint32_t publisher_pid() const noexcept { return m_publisher_pid; }
  [[nodiscard]] std::uint64_t publisher_start() const noexcept { return m_publisher_start; }
  [[nodiscard]] const std::string& topic() const noexcept { return m_topic; }
  [[nodiscard]] ino_t inode() const noexcept { return m_inode; }
  [[nodiscard]] std::byte* base() const noexcept { return m_base; }
  [[nodiscard]] std::size_t size() const noexcept { return m_size; }

  /// Slot i (i < slot_count()).
  [[nodiscard]] Slot& slot(std::uint32_t i) const noexcept {
    return reinterpret_cast<Slot*>(m_base + m_slots_offset)[i];
  }
  /// The ring of slot i: ring_capacity() entries.
  [[nodiscard]] std::atomic<std::uint64_t>* ring(std::uint32_t i) const noexcept {
    return reinterpret_cast<std::atomic<std::uint64_t>*>(m_base + m_rings_offset) +
           static_cast<std::size_t>(i) * m_ring_capacity;
  }
  /// Chunk `index`, or nullptr when no chunk has that index.
  [[nodiscard]] ChunkHeader* chunk(std::uint32_t index) const noexcept {
    for (const auto& pc : m_classes) {
      if (index - pc.first_index < pc.count && index >= pc.first_index) {
        return reinterpret_cast<ChunkHeader*>(m_base + pc.offset + std::uint64_t{index - pc.first_index} * pc.chunk_bytes);
      }
    }
    return nullptr;
  }
  /// Usable bytes of chunk `index` (0 when there is no such chunk).
  [[nodiscard]] std::uint32_t chunk_data_bytes(std::uint32_t index) const noexcept {
    for (const auto& pc : m_classes) {
      if (index - pc.first_index < pc.count && index >= pc.first_index) return pc.chunk_bytes - chunk_header_bytes;
    }
    return 0;
  }

  /// Checks a published chunk's descriptor against the geometry: the envelope it
  /// names must lie inside the chunk. Returns the envelope bytes, or empty if not.
  [[nodiscard]] std::span<const std::byte> envelope_of(std::uint32_t index) const noexcept;

 private:
  Mapping() = default;
  ~Mapping();
  [[nodiscard]] Result<void> adopt_geometry();

  std::atomic<int> m_refs{1};
  std::byte* m_base = nullptr;
  std::size_t m_size = 0;
  ino_t m_inode = 0;
  std::uint32_t m_slot_count = 0;
  std::uint32_t m_ring_capacity = 0;
  std::uint32_t m_chunk_count = 0;
  std::uint64_t m_slots_offset = 0;
  std::uint64_t m_rings_offset = 0;
  std::vector<PoolClass> m_classes;
  std::uint64_t m_publisher_id = 0;
  std::uint32_t m_publisher_pid = 0;
  std::uint64_t m_publisher_start = 0;
  std::string m_topic;

};

/// Removes the segment file if it is still the one `mapping` created (publisher close).
void unlink_if_ours(const Mapping& mapping, std::string_view name);
/// Removes the file at `path` if it is still the file with inode `inode`.
void unlink_if_same(const std::string& path, ino_t inode);

}  // namespace rill::detail::shm
