// History: what a transient_local or persistent publisher keeps for late joiners and
// durable subscriptions, and where durable subscriptions' acks are stored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rill/ack_store.hpp"
#include "rill/error.hpp"
#include "rill/log.hpp"
#include "rill/policy.hpp"

namespace rill::detail {

/// Reads kept messages in sequence order from one position. One per catching-up subscription.
class HistoryCursor {
 public:
  virtual ~HistoryCursor() = default;
  /// The next kept envelope if its sequence is below `limit`; nullopt when none is
  /// readable yet (or the limit is reached). The bytes stay valid until the next call.
  /// A record that fails its check is an error (corrupt), never returned.
  [[nodiscard]] virtual Result<std::optional<std::span<const std::byte>>> next(std::uint64_t limit) = 0;
  /// The sequence next() returns next.
  [[nodiscard]] virtual std::uint64_t position() const noexcept = 0;
  /// Messages skipped because they were no longer kept when the cursor reached them.
  [[nodiscard]] virtual std::uint64_t lost() const noexcept = 0;
};

/// Where a joining subscription starts, and how many it asked for that are gone.
struct HistoryStart {
  std::uint64_t from = 0;  ///< first sequence it is sent
  std::uint64_t lost = 0;  ///< messages before `from` it asked for that are no longer kept
};

/// Owned by a Publisher; used from its publishing thread only (the log inside is thread-safe).
class History {
 public:
  /// transient_local(N): the last N envelopes in memory, starting at sequence `next_seq`.
  static std::unique_ptr<History> in_memory(std::size_t keep, std::uint64_t next_seq);
  /// persistent: opens (recovering) the log in options.dir, and the ack store.
  static Result<std::unique_ptr<History>> open_log(const std::string& dir, const LogOptions& log,
                                                   const std::string& ack_store_path, std::uint64_t new_publisher_id);

  virtual ~History() = default;

  [[nodiscard]] virtual DurabilityKind offered() const noexcept = 0;
  /// The publisher id to use (persistent: the log's, so it survives restarts).
  [[nodiscard]] virtual std::uint64_t publisher_id() const noexcept = 0;
  /// The sequence the next record() must carry.
  [[nodiscard]] virtual std::uint64_t next_sequence() const noexcept = 0;

  /// Keeps one envelope with sequence next_sequence() and its publish timestamp (persistent: appends it to the log,
  /// durably under fsync always). On error nothing is kept and the message must not be sent.
  [[nodiscard]] virtual Result<void> record(std::span<const std::byte> envelope, std::uint64_t seq,
                                            std::int64_t timestamp_ns) = 0;

  /// Where a subscription joining now starts. transient_local: the last `history` kept
  /// (0 = all). persistent: by `from`; last_ack reads `durable_name`'s stored position.
  [[nodiscard]] virtual HistoryStart start_for(StartFrom from, std::string_view durable_name,
                                               std::uint64_t history) const = 0;
  /// A cursor reading from `seq`.
  [[nodiscard]] virtual Result<std::unique_ptr<HistoryCursor>> cursor(std::uint64_t seq) const = 0;

  /// Notes that `name` handled everything up to `seq`; stored by flush_acks().
  virtual void ack(std::string_view name, std::uint64_t seq) = 0;
  /// Writes noted acks durably (one write per call); cheap when none is pending.
  virtual Result<void> flush_acks() = 0;
  /// The stored position of `name` (persistent only).
  [[nodiscard]] virtual std::optional<std::uint64_t> acked(std::string_view name) const = 0;

  /// persistent: the log; nullptr otherwise.
  [[nodiscard]] virtual const Log* log() const noexcept { return nullptr; }
  /// Syncs and closes the log (persistent); idempotent.
  virtual Result<void> close() { return {}; }
};

}  // namespace rill::detail
