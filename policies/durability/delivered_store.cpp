#include "delivered_store.hpp"

#include <cstring>

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
  const auto path = (dir.empty() ? std::filesystem::path(".") : dir) / (name + ".rill-state");
  auto file = MappedFile::open(path, file_size, "a subscriber state file", MappedFile::Lock::exclusive_now);
  if (!file) {
    if (file.error().code != Errc::address_in_use) return std::unexpected(file.error());
    return fail(Errc::address_in_use,
                "durable subscription " + name + " is in use by another process (" + path.string() + ")");
  }
  const bool fresh = file->fresh();
  DeliveredStore s(std::move(*file));
  const auto where = path.string();
  auto* base = s.m_file.data();
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

}  // namespace rill::detail
