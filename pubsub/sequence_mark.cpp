#include "sequence_mark.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>

namespace rill::detail {

namespace {

// 64 bytes: magic, version, reserved, boot id (36 characters of
// /proc/sys/kernel/random/boot_id, no newline), last handed out, reserved up to.
constexpr char magic[8] = {'R', 'I', 'L', 'L', 'S', 'E', 'Q', 'M'};
constexpr std::uint32_t version = 1;
constexpr std::size_t file_size = 4096;  // one page
struct Mark {
  char magic[8];
  std::uint32_t version;
  std::uint32_t reserved0;
  char boot_id[36];
  std::uint8_t reserved1[4];
  std::uint64_t handed_out;
  std::uint64_t reserved_to;
};
static_assert(sizeof(Mark) == 72);

std::string boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  id.resize(36, ' ');
  return id;
}

std::atomic_ref<std::uint64_t> word(std::uint64_t& v) { return std::atomic_ref<std::uint64_t>(v); }

}  // namespace

Result<SequenceMark> SequenceMark::open(const std::filesystem::path& dir) {
  SequenceMark m;
  m.m_path = dir / "sequence.mark";
  const auto where = m.m_path.string();
  m.m_fd = ::open(where.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (m.m_fd < 0) return fail(Errc::io_error, "cannot open " + where, errno);
  struct stat st {};
  if (::fstat(m.m_fd, &st) != 0) return fail(Errc::io_error, "cannot stat " + where, errno);
  const bool fresh = st.st_size == 0;
  if (fresh) {
    if (::ftruncate(m.m_fd, static_cast<off_t>(file_size)) != 0) {
      return fail(errno == ENOSPC ? Errc::no_space : Errc::io_error, "cannot size " + where, errno);
    }
  } else if (static_cast<std::size_t>(st.st_size) != file_size) {
    return fail(Errc::corrupt, where + ": " + std::to_string(st.st_size) + " bytes, a sequence mark has " +
                                   std::to_string(file_size));
  }
  m.m_map = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_SHARED, m.m_fd, 0);
  if (m.m_map == MAP_FAILED) {
    m.m_map = nullptr;
    return fail(Errc::io_error, "cannot map " + where, errno);
  }
  auto* h = static_cast<Mark*>(m.m_map);
  static constexpr char zeros[8] = {};
  if (fresh || std::memcmp(h->magic, zeros, sizeof zeros) == 0) {
    std::memset(h, 0, sizeof(Mark));
    h->version = version;
    std::memcpy(h->magic, magic, sizeof magic);
  } else if (std::memcmp(h->magic, magic, sizeof magic) != 0 || h->version != version) {
    return fail(Errc::corrupt, where + ": not a rill sequence mark (bad magic or version)");
  } else {
    const auto now = boot_id();
    const bool same_boot = std::memcmp(h->boot_id, now.data(), sizeof h->boot_id) == 0;
    // Same boot: the plain stores of the dead process are all in the page cache. After a
    // reboot only what was synced is known: the reservation covers everything handed out.
    m.m_found = same_boot ? h->handed_out : std::max(h->handed_out, h->reserved_to);
  }
  const auto now = boot_id();
  std::memcpy(h->boot_id, now.data(), sizeof h->boot_id);
  return m;
}

SequenceMark::SequenceMark(SequenceMark&& other) noexcept { *this = std::move(other); }

SequenceMark& SequenceMark::operator=(SequenceMark&& other) noexcept {
  if (this != &other) {
    close();
    m_path = std::move(other.m_path);
    m_fd = std::exchange(other.m_fd, -1);
    m_map = std::exchange(other.m_map, nullptr);
    m_found = other.m_found;
    m_reserved = other.m_reserved;
  }
  return *this;
}

SequenceMark::~SequenceMark() { close(); }

void SequenceMark::close() noexcept {
  if (m_map != nullptr) ::munmap(m_map, file_size);
  if (m_fd >= 0) ::close(m_fd);
  m_map = nullptr;
  m_fd = -1;
}

Result<void> SequenceMark::hand_out(std::uint64_t seq, bool reserve) noexcept {
  auto* h = static_cast<Mark*>(m_map);
  if (reserve && seq > m_reserved) {
    // Synced before the number is used, so a restart after a power loss starts above it.
    word(h->reserved_to).store(seq + reserve_block - 1, std::memory_order_release);
    if (::msync(m_map, file_size, MS_SYNC) != 0) return fail(Errc::io_error, "msync " + m_path.string(), errno);
    m_reserved = seq + reserve_block - 1;
  }
  word(h->handed_out).store(seq, std::memory_order_release);
  return {};
}

Result<void> SequenceMark::settle(std::uint64_t last) noexcept {
  auto* h = static_cast<Mark*>(m_map);
  word(h->handed_out).store(last, std::memory_order_release);
  word(h->reserved_to).store(last, std::memory_order_release);
  m_reserved = last;
  if (::msync(m_map, file_size, MS_SYNC) != 0) return fail(Errc::io_error, "msync " + m_path.string(), errno);
  return {};
}

}  // namespace rill::detail
