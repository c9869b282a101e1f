#include "shm_directory.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <random>

#include "base/logging.hpp"
#include "shm_futex.hpp"
#include "transport/transport.hpp"
#include "transport/node_core.hpp"

namespace rill::detail::shm {

namespace {

constexpr std::size_t page = 4096;

std::uint64_t round_up(std::uint64_t n, std::uint64_t to) {
  return (n + to - 1) / to * to;
}

}  // namespace

// ---- Directory ------------------------------------------------------------------

Directory::~Directory() {
  if (m_base != nullptr) ::munmap(m_base, m_size);
}

bool Directory::owner_alive() const {
  return header().state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(DirState::live) &&
         process_alive(m_geo.owner_pid, m_geo.owner_start);
}

Result<std::unique_ptr<Directory>> Directory::create(const ShmOptions& o) {
  // What a killed owner left (its segments, half-made files) goes first: nothing else
  // would ever remove them, as their names hold random publisher ids.
  sweep_stale_files(o.name);
  const std::uint64_t channels_offset = dir_header_bytes;
  const std::uint64_t subscribers_offset = round_up(channels_offset + std::uint64_t{dir_channels} * sizeof(ChannelEntry), page);
  const std::uint64_t total = round_up(subscribers_offset + std::uint64_t{dir_subscribers} * sizeof(SubscriberEntry), page);
  auto file = create_file(o, directory_path(o.name), total);
  if (!file) return std::unexpected(file.error());
  std::unique_ptr<Directory> d(new Directory());
  d->m_base = file->base;
  d->m_size = total;
  d->m_inode = file->inode;
  file->base = nullptr;  // the directory owns the mapping now
  auto& h = *new (d->m_base) DirectoryHeader{};
  std::memcpy(h.magic, dir_magic, sizeof h.magic);
  h.version = dir_version;
  h.header_bytes = dir_header_bytes;
  h.total_bytes = total;
  h.instance = new_endpoint_instance();
  h.owner_pid = static_cast<std::uint32_t>(::getpid());
  h.owner_start = process_start_time(::getpid()).value_or(0);
  h.channel_count = dir_channels;
  h.subscriber_count = dir_subscribers;
  h.channels_offset = channels_offset;
  h.subscribers_offset = subscribers_offset;
  h.state.store(static_cast<std::uint32_t>(DirState::live), std::memory_order_relaxed);
  auto geo = check_directory({d->m_base, d->m_size});
  if (!geo) {
    discard_file(*file);
    return std::unexpected(geo.error());
  }
  d->m_geo = *geo;
  std::atomic_thread_fence(std::memory_order_release);
  auto published = publish_file(*file, [&](int old) -> std::optional<Error> {
    // The endpoint is held while its owner runs: a directory's owner, or (an older rill
    // on this host) a single segment's publisher.
    // A directory whose state says closed is being removed by its owner (the last
    // publisher of a Node closing, perhaps on another thread of this process): stale.
    constexpr auto dir_fixed = offsetof(DirectoryHeader, state) + sizeof(std::uint32_t);
    unsigned char raw[dir_fixed];
    SegmentHeader sh{};
    std::uint32_t pid = 0;
    std::uint64_t start = 0;
    if (::pread(old, raw, dir_fixed, 0) == static_cast<ssize_t>(dir_fixed) &&
        std::memcmp(raw, dir_magic, sizeof dir_magic) == 0) {
      std::uint32_t state = 0;
      std::memcpy(&pid, raw + offsetof(DirectoryHeader, owner_pid), sizeof pid);
      std::memcpy(&start, raw + offsetof(DirectoryHeader, owner_start), sizeof start);
      std::memcpy(&state, raw + offsetof(DirectoryHeader, state), sizeof state);
      if (state != static_cast<std::uint32_t>(DirState::live)) return std::nullopt;
    } else if (::pread(old, &sh, offsetof(SegmentHeader, state), 0) == static_cast<ssize_t>(offsetof(SegmentHeader, state)) &&
               std::memcmp(sh.magic, shm_magic, sizeof sh.magic) == 0) {
      pid = sh.publisher_pid;
      start = sh.publisher_start;
    } else {
      return Error{Errc::address_in_use, EEXIST, file->path + " exists and is not a rill file; remove it"};
    }
    if (process_alive(pid, start)) {
      return Error{Errc::address_in_use, EADDRINUSE,
                   "shm://" + o.name + " is held by a running process (pid " + std::to_string(pid) + ")"};
    }
    return std::nullopt;
  });
  if (!published) return std::unexpected(published.error());
  return d;
}

Result<std::unique_ptr<Directory>> Directory::open(const ShmOptions& o) {
  const auto path = directory_path(o.name);
  auto file = open_file(path, dir_header_bytes, "directory");
  if (!file) {
    auto e = file.error();
    if (e.code == Errc::not_connected) e.detail = "no publisher on shm://" + o.name + " yet";
    return std::unexpected(e);
  }
  std::unique_ptr<Directory> d(new Directory());
  d->m_base = file->base;
  d->m_size = file->size;
  d->m_inode = file->inode;
  auto geo = check_directory({d->m_base, d->m_size});
  if (!geo) {
    auto e = geo.error();
    e.detail = path + ": " + e.detail;
    return std::unexpected(e);
  }
  d->m_geo = *geo;
  return d;
}

Result<Mapping*> open_live_channel(const ShmOptions& o, std::string_view prefix) {
  auto dir = Directory::open(o);
  if (!dir) return std::unexpected(dir.error());
  for (std::uint32_t i = 0; i < (*dir)->channel_count(); ++i) {
    const auto info = read_channel((*dir)->channel(i));
    if (info && info->topic.starts_with(prefix)) return Mapping::open(o, info->publisher_id);
  }
  return fail(Errc::not_connected, "no live publisher on shm://" + o.name);
}

// ---- ShmEndpoint ----------------------------------------------------------------

Result<std::shared_ptr<ShmEndpoint>> ShmEndpoint::open(NodeCore& node, const ShmOptions& o) {
  return node.shared_endpoint<ShmEndpoint>("shm://" + o.name, [&]() -> Result<std::shared_ptr<ShmEndpoint>> {
    auto dir = Directory::create(o);
    if (!dir) return std::unexpected(dir.error());
    log().info("shm://{}: endpoint bound (instance {:016x})", o.name, (*dir)->instance());
    return std::shared_ptr<ShmEndpoint>(new ShmEndpoint(std::move(*dir), o.name));
  });
}

ShmEndpoint::~ShmEndpoint() {
  m_dir->header().state.store(static_cast<std::uint32_t>(DirState::closed), std::memory_order_release);
  bump_generation();
  unlink_if_same(directory_path(m_name), m_dir->inode());
}

void ShmEndpoint::bump_generation() {
  auto& gen = m_dir->header().generation;
  gen.fetch_add(1, std::memory_order_acq_rel);
  futex_wake(gen, INT_MAX);
}

std::vector<SubscriberRequest> ShmEndpoint::registered_for(std::string_view topic) {
  std::vector<SubscriberRequest> out;
  for (std::uint32_t i = 0; i < m_dir->subscriber_count(); ++i) {
    auto& e = m_dir->subscriber(i);
    auto r = read_subscriber(e);
    if (!r) continue;
    if (!process_alive(r->pid, r->start)) {
      auto owner = make_entry_owner(r->pid, EntryState::active);
      e.owner.compare_exchange_strong(owner, 0, std::memory_order_acq_rel);  // a dead subscriber's entry
      continue;
    }
    if (topic.starts_with(r->prefix)) out.push_back(std::move(*r));
  }
  return out;
}

bool ShmEndpoint::registered(std::uint32_t pid, std::uint64_t subscription_id) const {
  const auto want = make_entry_owner(pid, EntryState::active);
  for (std::uint32_t i = 0; i < m_dir->subscriber_count(); ++i) {
    const auto& e = m_dir->subscriber(i);
    if (e.owner.load(std::memory_order_acquire) == want &&
        e.subscription_id.load(std::memory_order_relaxed) == subscription_id) {
      return true;
    }
  }
  return false;
}

Result<std::uint32_t> ShmEndpoint::add_channel(std::uint64_t publisher_id, std::string_view topic) {
  std::lock_guard lock(m_mutex);
  for (std::uint32_t i = 0; i < m_dir->channel_count(); ++i) {
    auto& e = m_dir->channel(i);
    const auto state = static_cast<ChannelState>(e.word.load(std::memory_order_relaxed) & 0xff);
    if (state != ChannelState::free && state != ChannelState::closed) continue;
    write_channel(e, publisher_id, topic);
    bump_generation();
    return i;
  }
  return fail(Errc::exhausted, "shm://" + m_name + " carries " + std::to_string(m_dir->channel_count()) +
                                   " publishers already (the most one endpoint holds)");
}

void ShmEndpoint::end_channel(std::uint32_t index) {
  std::lock_guard lock(m_mutex);
  close_channel(m_dir->channel(index));
  bump_generation();
}

}  // namespace rill::detail::shm
