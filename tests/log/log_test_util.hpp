// Helpers shared by the log tests: temporary directories and record bodies that say what they are.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace logtest {

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  /// Under `base` when given and a directory (e.g. "/dev/shm" where fsyncs cost nothing).
  explicit TempDir(const char* base = nullptr) {
    std::error_code ec;
    if (base == nullptr || !std::filesystem::is_directory(base, ec)) base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/rill-log-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    m_path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(m_path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return m_path; }
  [[nodiscard]] std::filesystem::path operator/(std::string_view name) const { return m_path / name; }

 private:
  std::filesystem::path m_path;
};

inline std::span<const std::byte> bytes_of(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}
inline std::string_view text_of(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
/// "record N" padded with '.' to `size` bytes, so a reader can tell which record it got.
inline std::string body_for(std::uint64_t n, std::size_t size = 0) {
  std::string s = "record " + std::to_string(n);
  if (s.size() < size) s.append(size - s.size(), '.');
  return s;
}

}  // namespace logtest
