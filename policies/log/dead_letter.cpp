#include "rill/dead_letter.hpp"

#include <cstring>

#include "rill/codec.hpp"

namespace rill {

namespace {

constexpr std::size_t dl_header_bytes = 32;
constexpr std::size_t pad8(std::size_t n) { return (n + 7) & ~std::size_t{7}; }

}  // namespace

std::vector<std::byte> encode_dead_letter(std::span<const std::byte> envelope, std::string_view reason,
                                          std::uint32_t attempts, std::uint64_t publisher_id, std::uint64_t sequence,
                                          std::int64_t dead_ns) {
  reason = reason.substr(0, 4096);  // a reason is a line of text, not a second payload
  std::vector<std::byte> out(dl_header_bytes + pad8(reason.size()) + envelope.size());
  std::byte* p = out.data();
  const auto reason_len = static_cast<std::uint32_t>(reason.size());
  std::memcpy(p, &attempts, 4);
  std::memcpy(p + 4, &reason_len, 4);
  std::memcpy(p + 8, &dead_ns, 8);
  std::memcpy(p + 16, &publisher_id, 8);
  std::memcpy(p + 24, &sequence, 8);
  if (!reason.empty()) std::memcpy(p + dl_header_bytes, reason.data(), reason.size());
  // The envelope starts 8-aligned within the body (and bodies are 8-aligned in segments).
  if (!envelope.empty()) std::memcpy(p + dl_header_bytes + pad8(reason.size()), envelope.data(), envelope.size());
  return out;
}

Result<DeadLetter> decode_dead_letter(std::span<const std::byte> body) {
  if (body.size() < dl_header_bytes) return fail(Errc::malformed, "dead letter shorter than its header");
  DeadLetter d;
  std::uint32_t reason_len = 0;
  std::memcpy(&d.attempts, body.data(), 4);
  std::memcpy(&reason_len, body.data() + 4, 4);
  std::memcpy(&d.dead_ns, body.data() + 8, 8);
  std::memcpy(&d.publisher_id, body.data() + 16, 8);
  std::memcpy(&d.sequence, body.data() + 24, 8);
  if (reason_len > body.size() - dl_header_bytes || pad8(reason_len) > body.size() - dl_header_bytes) {
    return fail(Errc::malformed, "dead letter reason runs past the record");
  }
  d.reason = {reinterpret_cast<const char*>(body.data() + dl_header_bytes), reason_len};
  d.envelope = body.subspan(dl_header_bytes + pad8(reason_len));
  return d;
}

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

std::uint64_t DeadLetterLog::redriven() const { return m_acks->get("redriven").value_or(0); }

Result<void> DeadLetterLog::mark_redriven(std::uint64_t dlq_seq) { return m_acks->ack("redriven", dlq_seq); }

}  // namespace rill
