// The directory's decoders and encoders: pure functions over its bytes, with no I/O, so
// the libFuzzer build (scripts/fuzz.sh, tests/fuzz/fuzz_shm_directory.cpp) links them alone.
#include <algorithm>
#include <cstring>

#include "shm_directory.hpp"

namespace rill::detail::shm {

namespace {

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
  e.owner.store(make_entry_owner(r.pid, EntryState::active), std::memory_order_release);
}

}  // namespace rill::detail::shm
