#include "rill/codec.hpp"

#include <cstring>
#include <ctime>

#include "rill/message.hpp"
#include "rill/message_builder.hpp"

namespace rill {

namespace {

constexpr flatbuffers::voffset_t plain_vtable[8] = {16, 40, 4, 8, 16, 24, 0, 32};

std::uint32_t read_u32(const std::uint8_t* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return flatbuffers::EndianScalar(v);
}

// The envelope rill writes without headers (write_envelope_head) has one fixed shape.
// Checking that shape and then the two offsets it contains is exactly what the generic
// verifier would establish for it (every byte read lies inside the buffer, aligned, the
// topic NUL-terminated), at a fraction of the cost. Anything else takes the generic path.
const wire::Envelope* verify_plain(std::span<const std::byte> bytes) noexcept {
  const auto* b = reinterpret_cast<const std::uint8_t*>(bytes.data());
  const std::uint64_t size = bytes.size();
  if (size < plain_head_bytes + 8 || read_u32(b) != 24 || read_u32(b + 24) != 16) return nullptr;
  flatbuffers::voffset_t vt[8];
  std::memcpy(vt, b + 8, sizeof vt);
  for (int i = 0; i < 8; ++i) {
    if (flatbuffers::EndianScalar(vt[i]) != plain_vtable[i]) return nullptr;
  }
  const std::uint64_t topic = 28 + std::uint64_t{read_u32(b + 28)};
  if (topic % 4 != 0 || topic + 4 > size) return nullptr;
  const std::uint64_t topic_len = read_u32(b + topic);
  if (topic + 4 + topic_len + 1 > size || b[topic + 4 + topic_len] != 0) return nullptr;
  const std::uint64_t payload = 56 + std::uint64_t{read_u32(b + 56)};
  if (payload % 4 != 0 || payload + 4 > size || payload + 4 + read_u32(b + payload) > size) return nullptr;
  return wire::GetEnvelope(b);
}

}  // namespace

Result<const wire::Envelope*> verify_envelope(std::span<const std::byte> bytes, const VerifyLimits& limits) {
  if (bytes.size() > limits.max_bytes) return fail(Errc::too_large, "envelope exceeds max_bytes");
  // The smallest valid envelope holds a root offset, the identifier, a vtable and a topic.
  if (bytes.size() < 16) return fail(Errc::malformed, "envelope shorter than 16 bytes");
  if (reinterpret_cast<std::uintptr_t>(bytes.data()) % envelope_alignment != 0) {
    return fail(Errc::malformed, "envelope not 8-byte aligned in memory");
  }
  const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
  if (!flatbuffers::BufferHasIdentifier(data, wire::EnvelopeIdentifier())) {
    return fail(Errc::malformed, "missing RILL file identifier");
  }
  if (auto plain = verify_plain(bytes)) return plain;
  flatbuffers::Verifier::Options opts;
  opts.max_depth = limits.max_depth;
  opts.max_tables = limits.max_tables;
  opts.check_nested_flatbuffers = false;  // the payload is verified by its reader's type
  flatbuffers::Verifier verifier(data, bytes.size(), opts);
  if (!wire::VerifyEnvelopeBuffer(verifier)) return fail(Errc::malformed, "envelope failed verification");
  return wire::GetEnvelope(data);
}

std::int64_t wall_clock_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::optional<std::string_view> MessageView::header(std::string_view key) const noexcept {
  const auto* hs = m_env->headers();
  if (hs == nullptr) return std::nullopt;
  for (const auto* h : *hs) {
    if (h->key()->string_view() == key) {
      return h->value() == nullptr ? std::string_view{} : h->value()->string_view();
    }
  }
  return std::nullopt;
}

HeaderKV MessageView::header_at(std::size_t i) const noexcept {
  const auto* h = m_env->headers()->Get(static_cast<flatbuffers::uoffset_t>(i));
  return {h->key()->string_view(), h->value() == nullptr ? std::string_view{} : h->value()->string_view()};
}

std::span<const std::byte> MessageBuilder::bytes() const noexcept {
  auto s = m_fbb.GetBufferSpan();
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::span<const std::byte> MessageBuilder::finish_nested(flatbuffers::uoffset_t root, const EnvelopeFields& fields) {
  // Do what FlatBufferBuilder::Finish does, minus marking the builder finished: the
  // bytes built so far become a complete FlatBuffer whose size is a multiple of its
  // alignment. Prefixing them with a length makes them a [ubyte] vector, in place.
  const std::size_t align = std::max<std::size_t>(m_fbb.min_alignment(), envelope_alignment);
  m_fbb.PreAlign(sizeof(flatbuffers::uoffset_t), align);
  m_fbb.PushElement<flatbuffers::uoffset_t>(m_fbb.ReferTo(root));
  const auto nested_size = m_fbb.GetSize();
  m_fbb.PushElement<flatbuffers::uoffset_t>(nested_size);
  return finish_envelope(flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>>(m_fbb.GetSize()), fields);
}

std::span<const std::byte> MessageBuilder::finish_raw(std::span<const std::byte> payload,
                                                      const EnvelopeFields& fields) {
  // Aligning raw payloads to 8 lets a reader cast aligned structs in place.
  m_fbb.ForceVectorAlignment(payload.size(), 1, envelope_alignment);
  auto vec = m_fbb.CreateVector(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size());
  return finish_envelope(vec, fields);
}

namespace {

template <class T>
void put(std::uint8_t* at, T value) noexcept {
  value = flatbuffers::EndianScalar(value);
  std::memcpy(at, &value, sizeof value);
}

}  // namespace

void write_envelope_head(std::byte* at, std::size_t head_bytes, std::size_t payload_at, const EnvelopeFields& fields) {
  // The common envelope (no headers) always has the same shape, so it is written as
  // bytes instead of through the generic table builder (which tracks fields, sorts
  // and deduplicates vtables: most of a small message's publishing cost). Layout, from
  // the buffer start B (8-aligned):
  //   B+0  root offset (24)          B+4  file identifier "RILL"
  //   B+8  vtable: 16, 40, topic 4, publisher_id 8, sequence 16, timestamp_ns 24, headers 0, payload 32
  //   B+24 table: soffset 16, topic, publisher_id, sequence, timestamp_ns, payload, 4 bytes pad
  //   B+64 topic string (length, bytes, NUL), zero padding up to head_bytes, then the payload vector.
  // codec_test checks it against the verifier for every topic and payload length.
  auto* b = reinterpret_cast<std::uint8_t*>(at);
  const std::size_t topic_end = plain_head_bytes + 4 + fields.topic.size() + 1;
  std::memset(b + topic_end, 0, head_bytes - topic_end);
  put<flatbuffers::uoffset_t>(b + 0, 24);
  std::memcpy(b + 4, wire::EnvelopeIdentifier(), 4);
  const flatbuffers::voffset_t vtable[8] = {16, 40, 4, 8, 16, 24, 0, 32};
  for (int i = 0; i < 8; ++i) put<flatbuffers::voffset_t>(b + 8 + 2 * i, vtable[i]);
  put<flatbuffers::soffset_t>(b + 24, 16);
  put<flatbuffers::uoffset_t>(b + 28, 64 - 28);
  put<std::uint64_t>(b + 32, fields.publisher_id);
  put<std::uint64_t>(b + 40, fields.sequence);
  put<std::int64_t>(b + 48, fields.timestamp_ns);
  put<flatbuffers::uoffset_t>(b + 56, static_cast<flatbuffers::uoffset_t>(payload_at - 56));
  put<std::uint32_t>(b + 60, 0);
  put<flatbuffers::uoffset_t>(b + 64, static_cast<flatbuffers::uoffset_t>(fields.topic.size()));
  std::memcpy(b + 68, fields.topic.data(), fields.topic.size());
  b[68 + fields.topic.size()] = 0;
}

void MessageBuilder::Builder::write_plain_envelope(flatbuffers::uoffset_t payload, const EnvelopeFields& fields) {
  const std::size_t align = std::max<std::size_t>(minalign_, envelope_alignment);
  const std::size_t used = GetSize();
  std::size_t total = plain_head_bytes + 4 + fields.topic.size() + 1;
  total += (align - (used + total) % align) % align;  // the finished size is a multiple of align
  auto* b = reinterpret_cast<std::byte*>(buf_.make_space(total));
  write_envelope_head(b, total, used + total - payload, fields);
  minalign_ = align;
  finished = true;
}

std::span<const std::byte> MessageBuilder::finish_envelope(
    flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> payload, const EnvelopeFields& fields) {
  if (fields.headers.empty()) {
    m_fbb.write_plain_envelope(payload.o, fields);
    return bytes();
  }
  auto topic = m_fbb.CreateString(fields.topic.data(), fields.topic.size());
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::Header>>> headers;
  if (!fields.headers.empty()) {
    // Headers are rare and small; a fixed stack array keeps the hot path allocation-free.
    constexpr std::size_t max_headers = 256;
    flatbuffers::Offset<wire::Header> hs[max_headers];
    const std::size_t n = std::min(fields.headers.size(), max_headers);
    for (std::size_t i = 0; i < n; ++i) {
      auto k = m_fbb.CreateString(fields.headers[i].key.data(), fields.headers[i].key.size());
      auto v = m_fbb.CreateString(fields.headers[i].value.data(), fields.headers[i].value.size());
      hs[i] = wire::CreateHeader(m_fbb, k, v);
    }
    headers = m_fbb.CreateVector(hs, n);
  }
  wire::EnvelopeBuilder env(m_fbb);
  env.add_publisher_id(fields.publisher_id);
  env.add_sequence(fields.sequence);
  env.add_timestamp_ns(fields.timestamp_ns);
  env.add_topic(topic);
  if (!headers.IsNull()) env.add_headers(headers);
  env.add_payload(payload);
  m_fbb.Finish(env.Finish(), wire::EnvelopeIdentifier());
  return bytes();
}

}  // namespace rill
