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

/// A TempDir on tmpfs (/dev/shm where there is one): logs and state directories whose
/// fsyncs cost nothing.
struct ShmTempDir : TempDir {
  ShmTempDir() : TempDir("/dev/shm") {}
};

/// A udp multicast endpoint on 127.0.0.1 that no other test or test process uses: group
/// 239.OCTET.<pid>.<n>, port BASE + a slot of 8 per pid (each test file its own OCTET and
/// BASE), and the query after iface.
inline std::string udp_test_endpoint(unsigned octet, unsigned base_port, std::string_view query) {
  static unsigned k = 0;
  ++k;
  const auto pid = static_cast<unsigned>(::getpid());
  std::string ep = "udp://239." + std::to_string(octet) + "." + std::to_string(pid % 250) + "." +
                   std::to_string(k % 250 + 1) + ":" + std::to_string(base_port + (pid % 3000) * 8 + k % 8) +
                   "?iface=127.0.0.1";
  if (!query.empty()) ep.append("&").append(query);
  return ep;
}

}  // namespace rilltest
