#include "mapped_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

namespace rill::detail {

Result<MappedFile> MappedFile::open(const std::filesystem::path& path, std::size_t size, std::string_view kind,
                                    Lock lock) {
  MappedFile f;
  f.m_path = path;
  const auto where = path.string();
  f.m_fd = ::open(where.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (f.m_fd < 0) return fail(Errc::io_error, "cannot open " + where, errno);
  if (lock != Lock::none && ::flock(f.m_fd, lock == Lock::exclusive_now ? LOCK_EX | LOCK_NB : LOCK_EX) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) return fail(Errc::address_in_use, where + " is in use by another process");
    return fail(Errc::io_error, "cannot lock " + where, err);
  }
  struct stat st {};
  if (::fstat(f.m_fd, &st) != 0) return fail(Errc::io_error, "cannot stat " + where, errno);
  if (!S_ISREG(st.st_mode)) return fail(Errc::corrupt, where + " is not a regular file");
  f.m_fresh = st.st_size == 0;
  if (f.m_fresh) {
    // Sized before it is mapped: touching a page past the end would be SIGBUS.
    if (::ftruncate(f.m_fd, static_cast<off_t>(size)) != 0) {
      return fail(errno == ENOSPC ? Errc::no_space : Errc::io_error, "cannot size " + where, errno);
    }
  } else if (static_cast<std::size_t>(st.st_size) != size) {
    return fail(Errc::corrupt, where + ": " + std::to_string(st.st_size) + " bytes, " + std::string(kind) + " has " +
                                   std::to_string(size) + " (not " + std::string(kind) + ", or damaged)");
  }
  f.m_map = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, f.m_fd, 0);
  if (f.m_map == MAP_FAILED) {
    f.m_map = nullptr;
    return fail(Errc::io_error, "cannot map " + where, errno);
  }
  f.m_size = size;
  return f;
}

MappedFile::MappedFile(MappedFile&& other) noexcept {
  *this = std::move(other);
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    close();
    m_path = std::move(other.m_path);
    m_fd = std::exchange(other.m_fd, -1);
    m_map = std::exchange(other.m_map, nullptr);
    m_size = std::exchange(other.m_size, 0);
    m_fresh = other.m_fresh;
  }
  return *this;
}

MappedFile::~MappedFile() {
  close();
}

void MappedFile::close() noexcept {
  if (m_map != nullptr) ::munmap(m_map, m_size);
  if (m_fd >= 0) ::close(m_fd);  // releases its locks
  m_map = nullptr;
  m_fd = -1;
}

Result<void> MappedFile::sync() const noexcept {
  if (::msync(m_map, m_size, MS_SYNC) != 0) return fail(Errc::io_error, "msync " + m_path.string(), errno);
  return {};
}

}  // namespace rill::detail
