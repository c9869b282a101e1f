// Checkpoint files: atomic replacement and whole-file reads (used by the CEP operator; the
// window operator's checkpoint.cpp has the same steps of its own).
#include "stream/state_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace rill::stream::detail {

namespace {
// "VERB path", built by appending (GCC 12 warns falsely on "literal" + string).
std::string what(std::string_view verb, const std::string& path) {
  std::string s(verb);
  s += ' ';
  s += path;
  return s;
}
}  // namespace

std::uint64_t fnv1a(std::string_view bytes) noexcept {
  std::uint64_t h = 14695981039346656037ull;
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

Result<void> write_file_atomic(const std::string& path, std::string_view bytes) {
  std::string tmp = path;
  tmp += ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail(Errc::io_error, what("open", tmp), errno);
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return fail(e == ENOSPC ? Errc::no_space : Errc::io_error, what("write", tmp), e);
    }
    done += static_cast<std::size_t>(n);
  }
  // The data is on disk before the name points at it: never a torn file under `path`.
  if (::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    return fail(Errc::io_error, what("fsync", tmp), e);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(Errc::io_error, what("rename", tmp), errno);
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = std::filesystem::path(".");
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // the rename itself is durable
    ::close(dfd);
  }
  return {};
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return fail(Errc::io_error, what("cannot read", path), errno);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) return fail(Errc::io_error, what("cannot read", path), errno);
  return bytes;
}

}  // namespace rill::stream::detail
