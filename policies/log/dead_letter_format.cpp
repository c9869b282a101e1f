// The dead-letter record body, apart from the log around it (so the fuzz build needs no log).
#include <cstring>

#include "rill/dead_letter.hpp"

namespace rill {

namespace {

constexpr std::size_t dl_header_bytes = 32;
constexpr std::size_t pad8(std::size_t n) {
  return (n + 7) & ~std::size_t{7};
}

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

}  // namespace rill
