// TempDir: a fresh directory for one test, removed with everything in it.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace rilltest {

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  /// Under `base` when given and a directory (e.g. "/dev/shm" where fsyncs cost nothing).
  explicit TempDir(const char* base = nullptr) {
    std::error_code ec;
    if (base == nullptr || !std::filesystem::is_directory(base, ec)) base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/rill-test-XXXXXX";
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
  [[nodiscard]] std::string str() const { return m_path.string(); }
  [[nodiscard]] std::filesystem::path operator/(std::string_view name) const { return m_path / name; }

 private:
  std::filesystem::path m_path;
};

}  // namespace rilltest
