// AckStore: durable consumer positions (durable name -> acknowledged sequence) in one file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "rill/error.hpp"

namespace rill {

/// Named positions, each write persisted atomically (temp file, fdatasync, rename, directory
/// fsync) before the call returns, so a position survives kill -9 and power loss once
/// acknowledged. Thread-safe. Meant for acks batched by the caller (one fsync per call).
class AckStore {
 public:
  /// Opens (creating if needed) the store file `path`, e.g. "LOGDIR/acks". A file that fails
  /// its CRC is Errc::corrupt: it was synced before it was renamed into place.
  [[nodiscard]] static Result<AckStore> open(const std::filesystem::path& path);

  AckStore(AckStore&&) noexcept;
  AckStore& operator=(AckStore&&) noexcept;
  ~AckStore();

  /// Records that `name` has processed everything up to `seq`. Positions only move forward:
  /// an older ack than the stored one is accepted and changes nothing.
  [[nodiscard]] Result<void> ack(std::string_view name, std::uint64_t seq);
  /// Sets `name` to `seq`, backwards too (an operator rewinding a consumer).
  [[nodiscard]] Result<void> set(std::string_view name, std::uint64_t seq);
  /// Forgets `name`.
  [[nodiscard]] Result<void> erase(std::string_view name);
  /// The acknowledged position of `name`, if it has one.
  [[nodiscard]] std::optional<std::uint64_t> get(std::string_view name) const;
  /// Every name and position, sorted by name.
  [[nodiscard]] std::map<std::string, std::uint64_t, std::less<>> all() const;

 private:
  struct State;
  explicit AckStore(std::unique_ptr<State> state);
  std::unique_ptr<State> m_state;
};

}  // namespace rill
