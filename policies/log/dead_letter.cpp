#include "rill/dead_letter.hpp"

#include <cstring>

#include "rill/codec.hpp"

namespace rill {

Result<DeadLetterLog> DeadLetterLog::open(const std::filesystem::path& dir, bool read_only) {
  auto log = Log::open(dir, {.fsync = FsyncPolicy::always(), .segment_bytes = 16u << 20, .read_only = read_only});
  if (!log) return std::unexpected(log.error());
  auto acks = AckStore::open(dir / "acks");
  if (!acks) return std::unexpected(acks.error());
  return DeadLetterLog(std::move(*log), std::move(*acks));
}

Result<std::uint64_t> DeadLetterLog::add(std::span<const std::byte> envelope, std::string_view reason,
                                         std::uint32_t attempts, std::uint64_t publisher_id, std::uint64_t sequence) {
  const auto now = wall_clock_ns();
  const auto body = encode_dead_letter(envelope, reason, attempts, publisher_id, sequence, now);
  return m_log.append(body, {.timestamp_ns = now, .publisher_id = publisher_id});
}

Result<void> DeadLetterLog::for_each(std::uint64_t from, const std::function<bool(const DeadLetter&)>& fn) const {
  auto reader = m_log.reader(from);
  if (!reader) return std::unexpected(reader.error());
  for (;;) {
    auto rec = reader->next();
    if (!rec) return std::unexpected(rec.error());
    if (!*rec) return {};
    auto d = decode_dead_letter((*rec)->body);
    if (!d) {
      return fail(Errc::corrupt, "dead letter " + std::to_string((*rec)->sequence) + ": " + d.error().detail);
    }
    d->dlq_seq = (*rec)->sequence;
    if (!fn(*d)) return {};
  }
}

std::uint64_t DeadLetterLog::redriven() const {
  return m_acks->get("redriven").value_or(0);
}

Result<void> DeadLetterLog::mark_redriven(std::uint64_t dlq_seq) {
  return m_acks->ack("redriven", dlq_seq);
}

}  // namespace rill
