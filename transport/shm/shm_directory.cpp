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
#include "transport/node_core.hpp"

namespace rill::detail::shm {

namespace {

constexpr std::size_t page = 4096;

std::uint64_t round_up(std::uint64_t n, std::uint64_t to) {
  return (n + to - 1) / to * to;
}

std::uint64_t random_instance() {
  std::random_device rd;
  std::uint64_t id = 0;
  while (id == 0) id = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return id;
}

// Byte fields live in arrays of words that another process may be rewriting: each word is
// read and written atomically (no torn word, and no data race for ThreadSanitizer); the
// state words around the copy tell whether the whole was consistent.
void load_bytes(const std::uint64_t* words, std::size_t n, std::string& out) {
  out.resize(n);
  for (std::size_t i = 0; i * 8 < n; ++i) {
    const std::uint64_t w = std::atomic_ref(const_cast<std::uint64_t&>(words[i])).load(std::memory_order_relaxed);
    std::memcpy(out.data() + i * 8, &w, std::min<std::size_t>(8, n - i * 8));
  }
}

void store_bytes(std::uint64_t* words, std::size_t capacity, std::string_view s) {
  const auto n = std::min(s.size(), capacity);
  for (std::size_t i = 0; i * 8 < capacity; ++i) {
    std::uint64_t w = 0;
    if (i * 8 < n) std::memcpy(&w, s.data() + i * 8, std::min<std::size_t>(8, n - i * 8));
    std::atomic_ref(words[i]).store(w, std::memory_order_relaxed);
  }
}

constexpr std::uint64_t entry_word(std::uint64_t rewrites, ChannelState s) {
  return rewrites << 8 | static_cast<std::uint64_t>(s);
}
constexpr std::uint64_t entry_owner(std::uint32_t pid, EntryState s) {
  return static_cast<std::uint64_t>(pid) << 8 | static_cast<std::uint64_t>(s);
}

}  // namespace

Result<DirGeometry> check_directory(std::span<const std::byte> file) {
  if (file.size() < sizeof(DirectoryHeader)) return fail(Errc::malformed, "too small to be a rill directory");
  // Copy the fixed part once: another process could change it while we check.
  DirectoryHeader h;
  std::memcpy(static_cast<void*>(&h), file.data(), offsetof(DirectoryHeader, state));
  if (std::memcmp(h.magic, shm_magic, sizeof h.magic) == 0) {
    return fail(Errc::incompatible, "a segment of an older rill (one publisher per name); this build reads directory "
                                    "version " + std::to_string(dir_version));
  }
  if (std::memcmp(h.magic, dir_magic, sizeof h.magic) != 0) return fail(Errc::malformed, "not a rill directory (bad magic)");
  if (h.version != dir_version) {
    return fail(Errc::incompatible, "directory layout version " + std::to_string(h.version) + ", this build reads " +
                                        std::to_string(dir_version));
  }
  const auto bad = [](const char* what) {
    return fail(Errc::malformed, std::string("corrupt directory header: ") + what);
  };
  if (h.header_bytes != dir_header_bytes || h.total_bytes != file.size()) return bad("sizes");
  if (h.instance == 0 || h.owner_pid == 0) return bad("owner");
  if (h.channel_count == 0 || h.channel_count > max_dir_entries || h.subscriber_count > max_dir_entries) {
    return bad("entry counts");
  }
  const auto inside = [&](std::uint64_t offset, std::uint64_t bytes) {
    return offset >= dir_header_bytes && offset % cache_line == 0 && offset <= file.size() &&
           bytes <= file.size() - offset;
  };
  const std::uint64_t channels_bytes = std::uint64_t{h.channel_count} * sizeof(ChannelEntry);
  const std::uint64_t subscribers_bytes = std::uint64_t{h.subscriber_count} * sizeof(SubscriberEntry);
  if (!inside(h.channels_offset, channels_bytes)) return bad("channel table");
  if (!inside(h.subscribers_offset, subscribers_bytes)) return bad("subscriber table");
  if (h.channels_offset < h.subscribers_offset ? h.channels_offset + channels_bytes > h.subscribers_offset
                                               : h.subscribers_offset + subscribers_bytes > h.channels_offset) {
    return bad("tables overlap");
  }
  return DirGeometry{.instance = h.instance,
                     .owner_start = h.owner_start,
                     .owner_pid = h.owner_pid,
                     .channel_count = h.channel_count,
                     .subscriber_count = h.subscriber_count,
                     .channels_offset = h.channels_offset,
                     .subscribers_offset = h.subscribers_offset};
}

std::optional<ChannelInfo> read_channel(const ChannelEntry& e) {
  const auto before = e.word.load(std::memory_order_acquire);
  if ((before & 0xff) != static_cast<std::uint64_t>(ChannelState::live)) return std::nullopt;
  ChannelInfo c;
  c.publisher_id = e.publisher_id.load(std::memory_order_relaxed);
  const auto n = e.topic_bytes.load(std::memory_order_relaxed);
  if (c.publisher_id == 0 || n > max_topic_bytes) return std::nullopt;
  load_bytes(e.topic, n, c.topic);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (e.word.load(std::memory_order_relaxed) != before) return std::nullopt;
  return c;
}

void write_channel(ChannelEntry& e, std::uint64_t publisher_id, std::string_view topic) {
  const auto rewrites = (e.word.load(std::memory_order_relaxed) >> 8) + 1;
  e.word.store(entry_word(rewrites, ChannelState::writing), std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  e.publisher_id.store(publisher_id, std::memory_order_relaxed);
  e.topic_bytes.store(static_cast<std::uint32_t>(std::min<std::size_t>(topic.size(), max_topic_bytes)),
                      std::memory_order_relaxed);
  store_bytes(e.topic, max_topic_bytes, topic);
  e.word.store(entry_word(rewrites, ChannelState::live), std::memory_order_release);
}

void close_channel(ChannelEntry& e) {
  const auto rewrites = (e.word.load(std::memory_order_relaxed) >> 8) + 1;
  e.word.store(entry_word(rewrites, ChannelState::closed), std::memory_order_release);
}

std::optional<SubscriberRequest> read_subscriber(const SubscriberEntry& e) {
  const auto owner = e.owner.load(std::memory_order_acquire);
  if ((owner & 0xff) != static_cast<std::uint64_t>(EntryState::active)) return std::nullopt;
  SubscriberRequest r;
  r.pid = static_cast<std::uint32_t>(owner >> 8);
  r.subscription_id = e.subscription_id.load(std::memory_order_relaxed);
  r.start = e.owner_start.load(std::memory_order_relaxed);
  r.policy_kind = e.policy_kind.load(std::memory_order_relaxed);
  r.policy_capacity = e.policy_capacity.load(std::memory_order_relaxed);
  r.durability = e.durability.load(std::memory_order_relaxed);
  r.start_from = e.start_from.load(std::memory_order_relaxed);
  r.history = e.history.load(std::memory_order_relaxed);
  const auto prefix_bytes = e.prefix_bytes.load(std::memory_order_relaxed);
  const auto name_bytes = e.durable_name_bytes.load(std::memory_order_relaxed);
  const auto group_bytes = e.group_bytes.load(std::memory_order_relaxed);
  if (r.pid == 0 || prefix_bytes > max_prefix_bytes || name_bytes > max_durable_name_bytes ||
      group_bytes > max_group_name_bytes) {
    return std::nullopt;
  }
  load_bytes(e.prefix, prefix_bytes, r.prefix);
  load_bytes(e.durable_name, name_bytes, r.durable_name);
  load_bytes(e.group, group_bytes, r.group);
  std::atomic_thread_fence(std::memory_order_acquire);
  // Freed and claimed again meanwhile: the owner word or the (random) subscription id differs.
  if (e.owner.load(std::memory_order_relaxed) != owner ||
      e.subscription_id.load(std::memory_order_relaxed) != r.subscription_id) {
    return std::nullopt;
  }
  return r;
}

void write_subscriber(SubscriberEntry& e, const SubscriberRequest& r) {
  e.owner_start.store(r.start, std::memory_order_relaxed);
  e.subscription_id.store(r.subscription_id, std::memory_order_relaxed);
  e.policy_kind.store(r.policy_kind, std::memory_order_relaxed);
  e.policy_capacity.store(r.policy_capacity, std::memory_order_relaxed);
  e.durability.store(r.durability, std::memory_order_relaxed);
  e.start_from.store(r.start_from, std::memory_order_relaxed);
  e.history.store(r.history, std::memory_order_relaxed);
  e.prefix_bytes.store(static_cast<std::uint32_t>(std::min<std::size_t>(r.prefix.size(), max_prefix_bytes)),
                       std::memory_order_relaxed);
  e.durable_name_bytes.store(
      static_cast<std::uint32_t>(std::min<std::size_t>(r.durable_name.size(), max_durable_name_bytes)),
      std::memory_order_relaxed);
  e.group_bytes.store(static_cast<std::uint32_t>(std::min<std::size_t>(r.group.size(), max_group_name_bytes)),
                      std::memory_order_relaxed);
  store_bytes(e.prefix, max_prefix_bytes, r.prefix);
  store_bytes(e.durable_name, max_durable_name_bytes, r.durable_name);
  store_bytes(e.group, max_group_name_bytes, r.group);
  e.owner.store(entry_owner(r.pid, EntryState::active), std::memory_order_release);
}

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
  h.instance = random_instance();
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
    DirectoryHeader dh{};
    SegmentHeader sh{};
    const auto got = ::pread(old, &dh, offsetof(DirectoryHeader, state), 0);
    std::uint32_t pid = 0;
    std::uint64_t start = 0;
    if (got == static_cast<ssize_t>(offsetof(DirectoryHeader, state)) &&
        std::memcmp(dh.magic, dir_magic, sizeof dh.magic) == 0) {
      pid = dh.owner_pid;
      start = dh.owner_start;
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
      auto owner = entry_owner(r->pid, EntryState::active);
      e.owner.compare_exchange_strong(owner, 0, std::memory_order_acq_rel);  // a dead subscriber's entry
      continue;
    }
    if (topic.starts_with(r->prefix)) out.push_back(std::move(*r));
  }
  return out;
}

bool ShmEndpoint::registered(std::uint32_t pid, std::uint64_t subscription_id) const {
  const auto want = entry_owner(pid, EntryState::active);
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
