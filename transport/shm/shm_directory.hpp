// The directory of an shm endpoint, /dev/shm/rill.NAME: which publishers (channels) the
// endpoint carries and which subscriptions are registered on it. One process owns it (the
// one whose first publisher bound the name); PROTOCOL.md 11.11 gives the layout.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rill/error.hpp"
#include "shm_layout.hpp"
#include "shm_segment.hpp"

namespace rill::detail {
class NodeCore;
}

namespace rill::detail::shm {

/// A directory's geometry, copied out of its header once and checked against the file size.
struct DirGeometry {
  std::uint64_t instance = 0;
  std::uint64_t owner_start = 0;
  std::uint32_t owner_pid = 0;
  std::uint32_t channel_count = 0;
  std::uint32_t subscriber_count = 0;
  std::uint64_t channels_offset = 0;
  std::uint64_t subscribers_offset = 0;
};

/// Checks the header at the start of `file` (the whole mapped directory, untrusted): magic,
/// version (another is incompatible), sizes, both tables inside the file and aligned.
[[nodiscard]] Result<DirGeometry> check_directory(std::span<const std::byte> file);

/// A live channel, as read from its entry.
struct ChannelInfo {
  std::uint64_t publisher_id = 0;
  std::string topic;
};
/// Copies a live channel entry (id never 0, topic at most 256 bytes). nullopt when it is
/// not live, was rewritten while being read, or is out of bounds.
[[nodiscard]] std::optional<ChannelInfo> read_channel(const ChannelEntry& e);
/// Owner only: makes entry `e` name publisher `publisher_id` with `topic` (at most 256 bytes).
void write_channel(ChannelEntry& e, std::uint64_t publisher_id, std::string_view topic);
/// Owner only: marks entry `e` closed (its publisher left; the entry may be reused).
void close_channel(ChannelEntry& e);

/// A registered subscription's request, as read from (or written to) its entry.
struct SubscriberRequest {
  std::uint32_t pid = 0;
  std::uint64_t start = 0;
  std::uint64_t subscription_id = 0;
  std::uint32_t policy_kind = 0;
  std::uint64_t policy_capacity = 0;
  std::uint32_t durability = 0;
  std::uint32_t start_from = 0;
  std::uint64_t history = 0;
  std::string prefix;        ///< at most 256 bytes
  std::string durable_name;  ///< at most 128 bytes
  std::string group;         ///< at most 128 bytes
};
/// Copies an active registry entry; nullopt when it is not active, changed while being
/// read, or a length is out of bounds. The values are not otherwise checked (the
/// publisher validates the request as it does a slot's).
[[nodiscard]] std::optional<SubscriberRequest> read_subscriber(const SubscriberEntry& e);
/// Fills in entry `e`, which the caller claimed (state claiming), and makes it active.
/// Strings longer than their field are cut (the caller checked them).
void write_subscriber(SubscriberEntry& e, const SubscriberRequest& r);

/// A mapped directory file. Not thread-safe by itself: its owner's writes go through
/// ShmEndpoint's lock; every read of an entry is lock-free.
class Directory {
 public:
  /// Creates and names the directory of endpoint `o.name` for this process; a stale one
  /// (its owner gone) is removed first, with its segments; a live one is address_in_use.
  [[nodiscard]] static Result<std::unique_ptr<Directory>> create(const ShmOptions& o);
  /// Maps the directory of `o.name` (subscriber); not_connected when there is none.
  [[nodiscard]] static Result<std::unique_ptr<Directory>> open(const ShmOptions& o);
  ~Directory();
  Directory(const Directory&) = delete;
  Directory& operator=(const Directory&) = delete;

  [[nodiscard]] DirectoryHeader& header() const noexcept { return *reinterpret_cast<DirectoryHeader*>(m_base); }
  [[nodiscard]] const DirGeometry& geometry() const noexcept { return m_geo; }
  [[nodiscard]] std::uint64_t instance() const noexcept { return m_geo.instance; }
  [[nodiscard]] std::uint32_t channel_count() const noexcept { return m_geo.channel_count; }
  [[nodiscard]] std::uint32_t subscriber_count() const noexcept { return m_geo.subscriber_count; }
  [[nodiscard]] ino_t inode() const noexcept { return m_inode; }
  /// Channel entry i (i < channel_count()).
  [[nodiscard]] ChannelEntry& channel(std::uint32_t i) const noexcept {
    return reinterpret_cast<ChannelEntry*>(m_base + m_geo.channels_offset)[i];
  }
  /// Registry entry i (i < subscriber_count()).
  [[nodiscard]] SubscriberEntry& subscriber(std::uint32_t i) const noexcept {
    return reinterpret_cast<SubscriberEntry*>(m_base + m_geo.subscribers_offset)[i];
  }
  /// True while the directory is live and its owner process runs (same pid and start time).
  [[nodiscard]] bool owner_alive() const;

 private:
  Directory() = default;
  std::byte* m_base = nullptr;
  std::size_t m_size = 0;
  ino_t m_inode = 0;
  DirGeometry m_geo;
};

/// Maps the segment of the first live channel of endpoint `o.name` whose topic starts with
/// `prefix` (tests and tools that watch a publisher); not_connected when there is none.
[[nodiscard]] Result<Mapping*> open_live_channel(const ShmOptions& o, std::string_view prefix = {});

/// The endpoint as its owning process holds it: the directory, shared by every publisher
/// of one Node on shm://NAME (NodeCore::shared_endpoint). Thread-safe: publishers on
/// their own threads add and end channels under its lock (never per message).
class ShmEndpoint {
 public:
  /// The Node's endpoint NAME: the one its publishers already share, or a new directory.
  [[nodiscard]] static Result<std::shared_ptr<ShmEndpoint>> open(NodeCore& node, const ShmOptions& o);
  ~ShmEndpoint();  ///< marks the directory closed and removes its name

  [[nodiscard]] std::uint64_t instance() const noexcept { return m_dir->instance(); }
  /// The live registered subscriptions whose prefix matches `topic` (a new publisher
  /// pre-claims a slot for each); entries of processes that are gone are freed on the way.
  [[nodiscard]] std::vector<SubscriberRequest> registered_for(std::string_view topic);
  /// True while subscription `subscription_id` of process `pid` is registered (lock-free).
  [[nodiscard]] bool registered(std::uint32_t pid, std::uint64_t subscription_id) const;
  /// Lists publisher `publisher_id` as live and wakes the subscribers; returns its entry.
  [[nodiscard]] Result<std::uint32_t> add_channel(std::uint64_t publisher_id, std::string_view topic);
  /// Marks entry `index` closed and wakes the subscribers.
  void end_channel(std::uint32_t index);

 private:
  explicit ShmEndpoint(std::unique_ptr<Directory> dir, std::string name)
      : m_dir(std::move(dir)), m_name(std::move(name)) {}
  void bump_generation();

  std::mutex m_mutex;
  std::unique_ptr<Directory> m_dir;
  std::string m_name;
};

}  // namespace rill::detail::shm
