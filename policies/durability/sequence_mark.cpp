#include "sequence_mark.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <string>

namespace rill::detail {

namespace {

// The first 72 bytes of one page: magic, version, reserved, boot id (36 characters of
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

std::atomic_ref<std::uint64_t> word(std::uint64_t& v) {
  return std::atomic_ref<std::uint64_t>(v);
}

}  // namespace

Result<SequenceMark> SequenceMark::open(const std::filesystem::path& dir) {
  auto file = MappedFile::open(dir / "sequence.mark", file_size, "a sequence mark", MappedFile::Lock::none);
  if (!file) return std::unexpected(file.error());
  const bool fresh = file->fresh();
  SequenceMark m(std::move(*file));
  const auto where = m.m_file.path().string();
  auto* h = reinterpret_cast<Mark*>(m.m_file.data());
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
    if (m.m_found >= max_sequence) {
      return fail(Errc::corrupt, where + ": sequence " + std::to_string(m.m_found) + " is past the range (damaged)");
    }
  }
  const auto now = boot_id();
  std::memcpy(h->boot_id, now.data(), sizeof h->boot_id);
  return m;
}

SequenceMark::~SequenceMark() {
  stop_reserver();
}

void SequenceMark::stop_reserver() noexcept {
  if (!m_reserver) return;
  {
    std::lock_guard g(m_reserver->mutex);
    m_reserver->stop = true;
  }
  m_reserver->wake.notify_all();
  m_reserver->thread.join();
  m_reserver.reset();
}

Result<void> SequenceMark::hand_out(std::uint64_t seq, bool reserve) noexcept {
  auto* h = reinterpret_cast<Mark*>(m_file.data());
  if (reserve && seq + reserve_block / 2 > m_requested) {
    if (auto r = wait_reserved(seq); !r) return r;
  }
  word(h->handed_out).store(seq, std::memory_order_release);
  return {};
}

Result<void> SequenceMark::wait_reserved(std::uint64_t seq) noexcept {
  if (!m_reserver) {
    m_reserver = std::make_unique<Reserver>();
    Reserver* r = m_reserver.get();
    r->thread = std::thread([r, h = reinterpret_cast<Mark*>(m_file.data()), file = &m_file] {
      pthread_setname_np(pthread_self(), "rill-seqmark");
      std::unique_lock lk(r->mutex);
      for (;;) {
        r->wake.wait(lk, [&] { return r->stop || r->target > r->synced_to.load(std::memory_order_relaxed); });
        if (r->stop) return;
        const std::uint64_t target = r->target;
        lk.unlock();
        // Stored, then synced, before any number up to it is used.
        word(h->reserved_to).store(target, std::memory_order_release);
        auto synced = file->sync();
        lk.lock();
        if (!synced) {
          r->error = synced.error();
          r->synced.notify_all();
          return;
        }
        r->synced_to.store(target, std::memory_order_release);
        r->synced.notify_all();
      }
    });
  }
  Reserver& r = *m_reserver;
  std::unique_lock lk(r.mutex);
  m_requested = std::max(m_requested, seq) + reserve_block - 1;
  r.target = m_requested;
  r.wake.notify_one();
  // Only a number past the synced reservation waits (the first one, or a publisher that
  // outran the sync by half a block).
  r.synced.wait(lk, [&] { return r.error || r.synced_to.load(std::memory_order_relaxed) >= seq; });
  if (r.error) return std::unexpected(*r.error);
  return {};
}

Result<void> SequenceMark::settle(std::uint64_t last) noexcept {
  stop_reserver();
  auto* h = reinterpret_cast<Mark*>(m_file.data());
  word(h->handed_out).store(last, std::memory_order_release);
  word(h->reserved_to).store(last, std::memory_order_release);
  m_requested = last;
  return m_file.sync();
}

}  // namespace rill::detail
