#include "group_ledger.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>

#include "base/logging.hpp"

namespace rill::detail {

namespace {

// Layout (PROTOCOL.md section 15): a 64-byte header, one 64-byte line per member slot,
// the publisher table, then per publisher a ring of `window` cells from byte 8192.
constexpr char magic[8] = {'R', 'I', 'L', 'L', 'G', 'R', 'P', 'L'};
constexpr std::uint32_t version = 1;
constexpr std::size_t header_size = 64;
constexpr std::size_t members_at = header_size;
constexpr std::size_t member_line = 64;
constexpr std::size_t publishers_at = members_at + GroupLedger::member_slots * member_line;
constexpr std::size_t cells_at = 8192;
constexpr std::size_t cells_per_publisher_bytes = std::size_t{GroupLedger::window} * 8;
constexpr std::size_t file_size = cells_at + GroupLedger::publishers * cells_per_publisher_bytes;
static_assert(publishers_at + GroupLedger::publishers * 16 <= cells_at);

struct Header {
  char magic[8];
  std::uint32_t version;
  std::uint32_t member_slots;
  std::uint32_t publishers;
  std::uint32_t window;
  std::uint8_t reserved[40];
};
static_assert(sizeof(Header) == header_size);

// A cell: sequence tag (40 bits) | member slot (6) | slot generation (16) | state (2).
enum : std::uint64_t { begun = 1, finished = 2 };
constexpr std::uint64_t tag_mask = (1ull << 40) - 1;

constexpr std::uint64_t cell_value(std::uint64_t seq, std::uint32_t slot, std::uint32_t gen, std::uint64_t state) {
  return (seq & tag_mask) << 24 | std::uint64_t{slot & 63} << 18 | std::uint64_t{gen & 0xffff} << 2 | state;
}
constexpr std::uint64_t cell_tag(std::uint64_t v) {
  return v >> 24;
}
constexpr std::uint32_t cell_slot(std::uint64_t v) {
  return static_cast<std::uint32_t>(v >> 18) & 63;
}
constexpr std::uint32_t cell_gen(std::uint64_t v) {
  return static_cast<std::uint32_t>(v >> 2) & 0xffff;
}
constexpr std::uint64_t cell_state(std::uint64_t v) {
  return v & 3;
}

std::atomic_ref<std::uint64_t> word(std::uint64_t* p) {
  return std::atomic_ref<std::uint64_t>(*p);
}

// An open-file-description lock on one byte: released by the kernel when the member's
// process dies, so it tells a live member from a dead one without trusting pids.
int lock_byte(int fd, std::size_t at, short type, int cmd, struct flock* out = nullptr) {
  struct flock l {};
  l.l_type = type;
  l.l_whence = SEEK_SET;
  l.l_start = static_cast<off_t>(at);
  l.l_len = 1;
  const int r = ::fcntl(fd, cmd, &l);
  if (out != nullptr) *out = l;
  return r;
}

// How long a survivor waits for a live member still inside its handler for a message
// the publisher has handed over (its connection dropped, its process did not).
constexpr auto live_owner_wait = std::chrono::seconds(10);

}  // namespace

Result<GroupLedger> GroupLedger::open(const std::filesystem::path& dir, const std::string& name) {
  const auto path = (dir.empty() ? std::filesystem::path(".") : dir) / (name + ".rill-group");
  // Members start together: one at a time sizes and initialises the file (flock, dropped below).
  auto file = MappedFile::open(path, file_size, "a group ledger", MappedFile::Lock::exclusive_wait);
  if (!file) return std::unexpected(file.error());
  const bool fresh = file->fresh();
  GroupLedger g(std::move(*file));
  const auto where = path.string();
  auto* base = g.m_file.data();
  auto* h = reinterpret_cast<Header*>(base);
  static constexpr char zeros[8] = {};
  if (fresh || std::memcmp(h->magic, zeros, sizeof zeros) == 0) {
    h->version = version;
    h->member_slots = member_slots;
    h->publishers = publishers;
    h->window = window;
    if (auto synced = g.m_file.sync(); !synced) return std::unexpected(synced.error());
    std::memcpy(h->magic, magic, sizeof magic);  // last: a file with its magic is complete
  } else if (std::memcmp(h->magic, magic, sizeof magic) != 0) {
    return fail(Errc::corrupt, where + ": bad magic (not a rill group ledger)");
  } else if (h->version != version || h->member_slots != member_slots || h->publishers != publishers ||
             h->window != window) {
    return fail(Errc::corrupt, where + ": unsupported group ledger version " + std::to_string(h->version));
  }
  // A free member slot is one whose lock nobody holds (its last holder exited or died).
  bool taken = false;
  for (std::uint32_t i = 0; i < member_slots && !taken; ++i) {
    if (lock_byte(g.m_file.fd(), members_at + i * member_line, F_WRLCK, F_OFD_SETLK) != 0) continue;
    auto* gen = reinterpret_cast<std::uint64_t*>(base + members_at + i * member_line);
    // A new generation: cells a dead holder of this slot left "begun" stay told apart from ours.
    auto next = (word(gen).load() + 1) & 0xffff;
    if (next == 0) next = 1;
    word(gen).store(next);
    g.m_slot = i;
    g.m_generation = static_cast<std::uint32_t>(next);
    taken = true;
  }
  ::flock(g.m_file.fd(), LOCK_UN);
  if (!taken) {
    return fail(Errc::address_in_use,
                where + ": all " + std::to_string(member_slots) + " member slots are held by running group members");
  }
  return g;
}

std::uint64_t* GroupLedger::cells_of(std::uint64_t publisher_id) noexcept {
  auto* base = m_file.data();
  auto* table = reinterpret_cast<std::uint64_t*>(base + publishers_at);
  for (std::uint32_t i = 0; i < publishers; ++i) {
    auto id = word(&table[i * 2]);
    auto seen = id.load(std::memory_order_acquire);
    if (seen == 0 && id.compare_exchange_strong(seen, publisher_id, std::memory_order_acq_rel)) seen = publisher_id;
    if (seen == publisher_id) {
      return reinterpret_cast<std::uint64_t*>(base + cells_at + i * cells_per_publisher_bytes);
    }
  }
  return nullptr;
}

bool GroupLedger::owner_alive(std::uint64_t value) const noexcept {
  const auto slot = cell_slot(value);
  if (slot == m_slot) return cell_gen(value) == m_generation;
  struct flock l {};
  if (lock_byte(m_file.fd(), members_at + slot * member_line, F_WRLCK, F_OFD_GETLK, &l) != 0) return false;
  if (l.l_type == F_UNLCK) return false;  // nobody holds the slot: its member is gone
  auto* gen = reinterpret_cast<std::uint64_t*>(m_file.data() + members_at + slot * member_line);
  return (word(gen).load(std::memory_order_acquire) & 0xffff) == cell_gen(value);
}

GroupLedger::Claim GroupLedger::begin(std::uint64_t publisher_id, std::uint64_t seq) {
  auto* cells = cells_of(publisher_id);
  if (cells == nullptr) {
    if (!m_full_logged) {
      m_full_logged = true;
      log().warn(
          "consumer group ledger {}: {} publishers are remembered already; messages of publisher {:016x} "
          "are not tracked (a member's death can have them handled twice)",
          path().string(), publishers, publisher_id);
    }
    return {};
  }
  auto* cell = &cells[seq % window];
  const auto mine = cell_value(seq, m_slot, m_generation, begun);
  const auto deadline = std::chrono::steady_clock::now() + live_owner_wait;
  auto c = word(cell).load(std::memory_order_acquire);
  bool waited = false;
  for (;;) {
    const auto tag = cell_tag(c);
    if (c != 0 && tag == (seq & tag_mask)) {
      if (cell_state(c) == finished) return {.verdict = Verdict::done};
      if (cell_slot(c) == m_slot && cell_gen(c) == m_generation) return {Verdict::handle, cell, c};
      if (owner_alive(c) && std::chrono::steady_clock::now() < deadline) {
        // Its member still runs the handler for it: wait for the outcome.
        if (!waited) {
          waited = true;
          word(&m_live_waits).fetch_add(1, std::memory_order_release);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        c = word(cell).load(std::memory_order_acquire);
        continue;
      }
      if (word(cell).compare_exchange_weak(c, mine, std::memory_order_acq_rel)) return {Verdict::in_doubt, cell, mine};
      continue;
    }
    if (c != 0 && tag > (seq & tag_mask)) {
      // A newer sequence has this cell: seq is more than `window` behind it.
      if (!m_window_logged) {
        m_window_logged = true;
        log().warn(
            "consumer group ledger {}: publisher {:016x} seq {} is more than {} messages behind the group; "
            "it is not tracked",
            path().string(), publisher_id, seq, window);
      }
      return {};
    }
    if (word(cell).compare_exchange_weak(c, mine, std::memory_order_acq_rel)) return {Verdict::handle, cell, mine};
  }
}

void GroupLedger::finish(const Claim& claim) noexcept {
  if (claim.cell == nullptr) return;
  auto expected = claim.begun;
  word(claim.cell)
      .compare_exchange_strong(expected, (claim.begun & ~std::uint64_t{3}) | finished, std::memory_order_acq_rel);
}

Result<void> GroupLedger::sync() noexcept {
  return m_file.sync();
}

}  // namespace rill::detail
