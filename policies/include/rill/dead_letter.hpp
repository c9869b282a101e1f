// DeadLetterLog: messages a handler gave up on, with the reason and the attempt count.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "rill/ack_store.hpp"
#include "rill/log.hpp"

namespace rill {

/// One dead letter, read in place (valid during the callback it is passed to).
struct DeadLetter {
  std::uint64_t dlq_seq = 0;            ///< its own sequence in the dead-letter log
  std::uint32_t attempts = 0;           ///< how many times the handler failed it
  std::int64_t dead_ns = 0;             ///< when it was dead-lettered
  std::uint64_t publisher_id = 0;       ///< of the original message
  std::uint64_t sequence = 0;           ///< of the original message
  std::string_view reason;              ///< the handler's error text
  std::span<const std::byte> envelope;  ///< the whole original envelope, 8-byte aligned
};

/// Encodes a dead letter as a log record body (layout in PROTOCOL.md).
[[nodiscard]] std::vector<std::byte> encode_dead_letter(std::span<const std::byte> envelope, std::string_view reason,
                                                        std::uint32_t attempts, std::uint64_t publisher_id,
                                                        std::uint64_t sequence, std::int64_t dead_ns);
/// Decodes a record body; malformed when a length does not fit.
[[nodiscard]] Result<DeadLetter> decode_dead_letter(std::span<const std::byte> body);

/// A log of dead letters in its own directory (conventionally LOGDIR/dead-letters), synced on
/// every add (fsync always: a dead letter is the only copy once the handler gave up), plus the
/// position up to which letters were re-driven (in that directory's ack store, name "redriven").
class DeadLetterLog {
 public:
  [[nodiscard]] static Result<DeadLetterLog> open(const std::filesystem::path& dir, bool read_only = false);

  /// Stores one dead letter durably; returns its dead-letter sequence.
  [[nodiscard]] Result<std::uint64_t> add(std::span<const std::byte> envelope, std::string_view reason,
                                          std::uint32_t attempts, std::uint64_t publisher_id, std::uint64_t sequence);
  /// Calls `fn` for each dead letter from dead-letter sequence `from` (0: the first); stops
  /// early when `fn` returns false. A damaged record is an error, never skipped.
  [[nodiscard]] Result<void> for_each(std::uint64_t from, const std::function<bool(const DeadLetter&)>& fn) const;
  /// Dead letters up to this dead-letter sequence were re-driven (0: none).
  [[nodiscard]] std::uint64_t redriven() const;
  /// Records that letters up to `dlq_seq` were re-driven.
  [[nodiscard]] Result<void> mark_redriven(std::uint64_t dlq_seq);
  /// The underlying log (segments, retention, sequences).
  [[nodiscard]] Log& log() noexcept { return m_log; }

 private:
  DeadLetterLog(Log log, std::optional<AckStore> acks) : m_log(std::move(log)), m_acks(std::move(acks)) {}
  Log m_log;
  std::optional<AckStore> m_acks;
};

}  // namespace rill
