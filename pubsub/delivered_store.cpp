#include "delivered_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace rill::detail {

namespace {

// Header (64 bytes, little-endian as the machine writes it; see PROTOCOL.md section 14).
constexpr char magic[8] = {'R', 'I', 'L', 'L', 'S', 'U', 'B', 'S'};
constexpr std::uint32_t version = 1;
constexpr std::size_t header_size = 64;
constexpr std::size_t file_size = header_size + DeliveredStore::capacity * sizeof(DeliveredEntry);

struct Header {
  char magic[8];
  std::uint32_t version;
  std::uint32_t capacity;
  std::uint32_t entry_size;
  std::uint32_t reserved0;
  std::uint64_t next_stamp;
  std::uint8_t reserved[32];
};
static_assert(sizeof(Header) == header_size);

bool all_zero(const std::byte* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] != std::byte{0}) return false;
  }
  return true;
}

}  // namespace

Result<DeliveredStore> DeliveredStore::open(const std::filesystem::path& dir, const std::string& name) {
  DeliveredStore s;
  s.m_path = (dir.empty() ? std::filesystem::path(".") : dir) / (name + ".rill-state");
  const auto where = s.m_path.string();
  s.m_fd = ::open(where.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (s.m_fd < 0) return fail(Errc::io_error, "cannot open durable state file " + where, errno);
  if (::flock(s.m_fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      return fail(Errc::address_in_use,
                  "durable subscription " + name + " is in use by another process (" + where + ")");
    }
    return fail(Errc::io_error, "cannot lock " + where, err);
  }
  struct stat st {};
  if (::fstat(s.m_fd, &st) != 0) return fail(Errc::io_error, "cannot stat " + where, errno);
  if (!S_ISREG(st.st_mode)) return fail(Errc::corrupt, where + " is not a regular file");
  const bool fresh = st.st_size == 0;
  if (fresh) {
    // Sized before it is mapped: touching a page past the end would be SIGBUS.
    if (::ftruncate(s.m_fd, static_cast<off_t>(file_size)) != 0) {
      return fail(errno == ENOSPC ? Errc::no_space : Errc::io_error, "cannot size " + where, errno);
    }
  } else if (static_cast<std::size_t>(st.st_size) != file_size) {
    return fail(Errc::corrupt, where + ": " + std::to_string(st.st_size) + " bytes, a state file has " +
                                   std::to_string(file_size) + " (not a rill subscriber state file, or damaged)");
  }
  s.m_map = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_SHARED, s.m_fd, 0);
  if (s.m_map == MAP_FAILED) {
    s.m_map = nullptr;
    return fail(Errc::io_error, "cannot map " + where, errno);
  }
  s.m_size = file_size;
  auto* base = static_cast<std::byte*>(s.m_map);
  auto* h = reinterpret_cast<Header*>(base);
  // All zeros: a previous creation died between sizing and writing the header.
  if (fresh || all_zero(base, header_size)) {
    std::memset(base, 0, file_size);
    h->version = version;
    h->capacity = capacity;
    h->entry_size = sizeof(DeliveredEntry);
    h->next_stamp = 1;
    std::memcpy(h->magic, magic, sizeof magic);  // last: a file with its magic is complete
    if (auto r = s.sync(); !r) return std::unexpected(r.error());
  } else if (std::memcmp(h->magic, magic, sizeof magic) != 0) {
    return fail(Errc::corrupt, where + ": bad magic (not a rill subscriber state file)");
  } else if (h->version != version || h->capacity != capacity || h->entry_size != sizeof(DeliveredEntry)) {
    return fail(Errc::corrupt, where + ": unsupported state file version " + std::to_string(h->version) +
                                   " (capacity " + std::to_string(h->capacity) + ")");
  }
  s.m_entries = reinterpret_cast<DeliveredEntry*>(base + header_size);
  s.m_next_stamp = &h->next_stamp;
  // A publisher id twice would make its position ambiguous: the file was tampered with.
  for (std::uint32_t i = 0; i < capacity; ++i) {
    const auto id = s.m_entries[i].publisher_id;
    if (id == 0) continue;
    for (std::uint32_t j = i + 1; j < capacity; ++j) {
      if (s.m_entries[j].publisher_id == id) {
        return fail(Errc::corrupt, where + ": publisher " + std::to_string(id) + " appears twice");
      }
    }
  }
  return s;
}

DeliveredStore::DeliveredStore(DeliveredStore&& other) noexcept {
  *this = std::move(other);
}

DeliveredStore& DeliveredStore::operator=(DeliveredStore&& other) noexcept {
  if (this != &other) {
    close();
    m_path = std::move(other.m_path);
    m_fd = std::exchange(other.m_fd, -1);
    m_map = std::exchange(other.m_map, nullptr);
    m_size = std::exchange(other.m_size, 0);
    m_entries = std::exchange(other.m_entries, nullptr);
    m_next_stamp = std::exchange(other.m_next_stamp, nullptr);
  }
  return *this;
}

DeliveredStore::~DeliveredStore() {
  close();
}

void DeliveredStore::close() noexcept {
  if (m_map != nullptr) ::munmap(m_map, m_size);
  if (m_fd >= 0) ::close(m_fd);  // releases the flock
  m_map = nullptr;
  m_fd = -1;
}

DeliveredEntry* DeliveredStore::find(std::uint64_t publisher_id) noexcept {
  for (auto& e : entries()) {
    if (e.publisher_id == publisher_id) return &e;
  }
  return nullptr;
}

DeliveredEntry& DeliveredStore::slot(std::uint64_t publisher_id) noexcept {
  if (auto* e = find(publisher_id)) {
    e->stamp = (*m_next_stamp)++;
    return *e;
  }
  DeliveredEntry* victim = &m_entries[0];
  for (auto& e : entries()) {
    if (e.publisher_id == 0) {
      victim = &e;
      break;
    }
    if (e.stamp < victim->stamp) victim = &e;
  }
  // Cleared before the id is set: a crash in between leaves a free slot, never an
  // old publisher's position attached to a new one.
  store(victim->publisher_id, 0);
  store(victim->delivered, 0);
  store(victim->pending, 0);
  victim->stamp = (*m_next_stamp)++;
  store(victim->publisher_id, publisher_id);
  return *victim;
}

Result<void> DeliveredStore::sync() noexcept {
  if (::msync(m_map, m_size, MS_SYNC) != 0) return fail(Errc::io_error, "msync " + m_path.string(), errno);
  return {};
}

}  // namespace rill::detail
