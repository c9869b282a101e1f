// MappedFile: a small fixed-size state file, created if missing and mapped MAP_SHARED, so
// that plain stores into it survive kill -9 of the process. Shared by the durable
// subscription's state file, the consumer group ledger and the publisher's sequence mark.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string_view>

#include "rill/error.hpp"

namespace rill::detail {

class MappedFile {
 public:
  enum class Lock { none, exclusive_now, exclusive_wait };

  /// Opens (creating, sized and zero-filled when missing or empty) `path` of exactly
  /// `size` bytes and maps it. `kind` names the file in errors ("a group ledger").
  /// exclusive_now: flock(LOCK_EX|LOCK_NB), address_in_use when another process holds it;
  /// exclusive_wait: flock(LOCK_EX), waiting. Any other size, or not a regular file, is corrupt.
  [[nodiscard]] static Result<MappedFile> open(const std::filesystem::path& path, std::size_t size,
                                               std::string_view kind, Lock lock);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  ~MappedFile();

  [[nodiscard]] std::byte* data() const noexcept { return static_cast<std::byte*>(m_map); }
  [[nodiscard]] std::size_t size() const noexcept { return m_size; }
  [[nodiscard]] int fd() const noexcept { return m_fd; }
  /// True when this open created it (or found it empty).
  [[nodiscard]] bool fresh() const noexcept { return m_fresh; }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return m_path; }
  /// msync(MS_SYNC) of the whole mapping.
  [[nodiscard]] Result<void> sync() const noexcept;

 private:
  MappedFile() = default;
  void close() noexcept;

  std::filesystem::path m_path;
  int m_fd = -1;
  void* m_map = nullptr;
  std::size_t m_size = 0;
  bool m_fresh = false;
};

}  // namespace rill::detail
