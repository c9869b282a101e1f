#include "udp_wire.hpp"

#include <algorithm>
#include <cstring>

namespace rill::detail::udp {

namespace {

template <class T>
T get(std::span<const std::byte> b, std::size_t at) noexcept {
  T v{};
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}

template <class T>
void put(std::span<std::byte> b, std::size_t at, T v) noexcept {
  std::memcpy(b.data() + at, &v, sizeof v);
}

std::size_t put_header(std::span<std::byte> out, Type type, std::uint8_t flags, std::uint64_t publisher_id) noexcept {
  std::memcpy(out.data(), magic, 3);
  put<std::uint8_t>(out, 3, version);
  put<std::uint8_t>(out, 4, static_cast<std::uint8_t>(type));
  put<std::uint8_t>(out, 5, flags);
  put<std::uint16_t>(out, 6, 0);
  put<std::uint64_t>(out, 8, publisher_id);
  return header_bytes;
}

bool decode_data(std::span<const std::byte> d, Datagram& out) noexcept {
  if (d.size() < data_header_bytes) return false;
  out.data.first_seq = get<std::uint64_t>(d, 16);
  out.data.count = get<std::uint32_t>(d, 24);
  const auto count = out.data.count;
  if (out.data.first_seq == 0 || count == 0 || count > (d.size() - data_header_bytes) / entry_header_bytes)
    return false;
  if (out.data.first_seq >= max_sequence - count) return false;
  std::size_t at = data_header_bytes;
  for (std::uint32_t i = 0; i < count; ++i) {
    if (d.size() - at < entry_header_bytes) return false;
    const auto len = get<std::uint32_t>(d, at);
    at += entry_header_bytes;
    if (len == 0 || len > d.size() - at) return false;
    at += (std::size_t{len} + 7) & ~std::size_t{7};
    if (at > d.size()) at = d.size();  // the last entry's padding may be cut
  }
  return at == d.size();
}

bool decode_frag(std::span<const std::byte> d, std::size_t max_message, Datagram& out) noexcept {
  if (d.size() <= frag_header_bytes) return false;
  auto& f = out.frag;
  f.seq = get<std::uint64_t>(d, 16);
  f.msg_len = get<std::uint32_t>(d, 24);
  f.frag_size = get<std::uint32_t>(d, 28);
  f.index = get<std::uint32_t>(d, 32);
  f.count = get<std::uint32_t>(d, 36);
  f.offset = get<std::uint32_t>(d, 40);
  f.bytes = d.subspan(frag_header_bytes);
  // The geometry is fully determined by msg_len and frag_size, so a fragment that
  // fits it cannot overlap another or leave a hole: a complete bitmap is a complete message.
  if (f.seq == 0 || f.seq >= max_sequence || f.msg_len == 0 || f.msg_len > max_message || f.frag_size == 0)
    return false;
  if (f.frag_size > max_datagram_bytes) return false;
  if (f.count < 2 || f.count != fragment_count(f.msg_len, f.frag_size) || f.index >= f.count) return false;
  const std::uint64_t offset = std::uint64_t{f.index} * f.frag_size;
  if (offset != f.offset) return false;
  const std::uint64_t expect_len = std::min<std::uint64_t>(f.frag_size, f.msg_len - offset);
  return f.bytes.size() == expect_len;
}

}  // namespace

std::optional<Datagram> decode(std::span<const std::byte> d, std::size_t max_message, bool authenticated) noexcept {
  if (d.size() < header_bytes || std::memcmp(d.data(), magic, 3) != 0) return std::nullopt;
  if (get<std::uint8_t>(d, 3) != version) return std::nullopt;
  Datagram out;
  out.header.type = static_cast<Type>(get<std::uint8_t>(d, 4));
  out.header.flags = get<std::uint8_t>(d, 5);
  out.header.publisher_id = get<std::uint64_t>(d, 8);
  // Byte 6 says whether a trailer was there (checked and cut off before this); byte 7 is reserved.
  if (get<std::uint8_t>(d, 6) != (authenticated ? 1 : 0) || get<std::uint8_t>(d, 7) != 0) return std::nullopt;
  if (out.header.publisher_id == 0) return std::nullopt;
  switch (out.header.type) {
    case Type::data:
      if (!decode_data(d, out)) return std::nullopt;
      break;
    case Type::frag:
      if (!decode_frag(d, max_message, out)) return std::nullopt;
      break;
    case Type::heartbeat:
    case Type::bye:
      if (d.size() != 32) return std::nullopt;
      out.heartbeat = {get<std::uint64_t>(d, 16), get<std::uint64_t>(d, 24)};
      if (out.heartbeat.next_seq == 0 || out.heartbeat.oldest_seq == 0 ||
          out.heartbeat.oldest_seq > out.heartbeat.next_seq) {
        return std::nullopt;
      }
      break;
    case Type::welcome: {
      const bool durable = (out.header.flags & flag_durable) != 0;
      if (durable && (out.header.flags & flag_filtered) != 0) return std::nullopt;
      if (d.size() != (durable ? 40u : 32u)) return std::nullopt;
      out.welcome = {get<std::uint64_t>(d, 16), get<std::uint64_t>(d, 24), durable ? get<std::uint64_t>(d, 32) : 0};
      if (out.welcome.subscription_id == 0 || out.welcome.next_seq == 0 || out.welcome.next_seq >= max_sequence) {
        return std::nullopt;
      }
      if (out.welcome.lost >= out.welcome.next_seq) return std::nullopt;  // cannot have lost more than came before
      break;
    }
    case Type::reject: {
      if (d.size() < 32) return std::nullopt;
      auto& r = out.reject;
      r.subscription_id = get<std::uint64_t>(d, 16);
      r.offered = get<std::uint8_t>(d, 24);
      r.requested = get<std::uint8_t>(d, 25);
      const auto len = get<std::uint16_t>(d, 26);
      if (r.subscription_id == 0 || r.offered > 2 || r.requested > 2 || get<std::uint32_t>(d, 28) != 0)
        return std::nullopt;
      if (len > max_name_bytes || d.size() != 32u + len) return std::nullopt;
      r.reason = {reinterpret_cast<const char*>(d.data()) + 32, len};
      break;
    }
    case Type::status: {
      if (d.size() < 48) return std::nullopt;
      auto& s = out.status;
      s.subscription_id = get<std::uint64_t>(d, 16);
      s.received_seq = get<std::uint64_t>(d, 24);
      s.consumed_seq = get<std::uint64_t>(d, 32);
      s.window = get<std::uint32_t>(d, 40);
      s.policy = get<std::uint8_t>(d, 44);
      const auto reserved = get<std::uint8_t>(d, 45);
      const auto prefix_len = get<std::uint16_t>(d, 46);
      if (s.subscription_id == 0 || reserved != 0 || s.policy < 1 || s.policy > 4) return std::nullopt;
      if (prefix_len > max_prefix_bytes || d.size() < 48u + prefix_len) return std::nullopt;
      s.prefix = {reinterpret_cast<const char*>(d.data()) + 48, prefix_len};
      out.durable = (out.header.flags & flag_durable) != 0;
      std::size_t at = 48u + prefix_len;
      if (out.durable) {
        if (d.size() < at + durable_block_bytes) return std::nullopt;
        auto& q = out.request;
        q.kind = get<std::uint8_t>(d, at);
        q.from = get<std::uint8_t>(d, at + 1);
        const auto name_len = get<std::uint16_t>(d, at + 2);
        q.history = get<std::uint32_t>(d, at + 4);
        q.ack_seq = get<std::uint64_t>(d, at + 8);
        if (q.kind < 1 || q.kind > 2 || q.from > 2 || q.ack_seq >= max_sequence) return std::nullopt;
        if (name_len > max_name_bytes || d.size() < at + durable_block_bytes + name_len) return std::nullopt;
        q.name = {reinterpret_cast<const char*>(d.data()) + at + durable_block_bytes, name_len};
        at += durable_block_bytes + name_len;
      }
      if ((out.header.flags & flag_group) != 0) {
        if (d.size() < at + group_block_bytes) return std::nullopt;
        const auto group_len = get<std::uint16_t>(d, at);
        if (group_len == 0 || group_len > max_name_bytes || get<std::uint16_t>(d, at + 2) != 0) return std::nullopt;
        if (d.size() < at + group_block_bytes + group_len) return std::nullopt;
        s.group = {reinterpret_cast<const char*>(d.data()) + at + group_block_bytes, group_len};
        at += group_block_bytes + group_len;
      }
      if (d.size() != at) return std::nullopt;
      break;
    }
    case Type::nak: {
      if (d.size() < 32) return std::nullopt;
      auto& n = out.nak;
      n.subscription_id = get<std::uint64_t>(d, 16);
      n.count = get<std::uint16_t>(d, 24);
      if (n.subscription_id == 0 || n.count == 0 || n.count > max_nak_ranges) return std::nullopt;
      if (get<std::uint16_t>(d, 26) != 0 || get<std::uint32_t>(d, 28) != 0) return std::nullopt;
      if (d.size() != 32u + 24u * n.count) return std::nullopt;
      for (std::uint16_t i = 0; i < n.count; ++i) {
        auto& r = n.ranges[i];
        const std::size_t at = 32u + 24u * i;
        r = {get<std::uint64_t>(d, at), get<std::uint64_t>(d, at + 8), get<std::uint32_t>(d, at + 16),
             get<std::uint32_t>(d, at + 20)};
        if (r.first == 0 || r.last < r.first || r.last >= max_sequence || r.frag_last < r.frag_first)
          return std::nullopt;
        if (r.first != r.last && (r.frag_first != 0 || r.frag_last != all_fragments)) return std::nullopt;
      }
      break;
    }
    case Type::leave:
      if (d.size() != 24) return std::nullopt;
      out.leave_subscription = get<std::uint64_t>(d, 16);
      if (out.leave_subscription == 0) return std::nullopt;
      break;
    default:
      return std::nullopt;
  }
  return out;
}

std::size_t encode_data_header(std::span<std::byte> out, std::uint64_t publisher_id, std::uint64_t first_seq,
                               std::uint32_t count) noexcept {
  put_header(out, Type::data, 0, publisher_id);
  put<std::uint64_t>(out, 16, first_seq);
  put<std::uint32_t>(out, 24, count);
  put<std::uint32_t>(out, 28, 0);
  return data_header_bytes;
}

std::size_t append_entry(std::span<std::byte> out, std::size_t at, std::span<const std::byte> envelope) noexcept {
  put<std::uint32_t>(out, at, static_cast<std::uint32_t>(envelope.size()));
  put<std::uint32_t>(out, at + 4, 0);
  std::memcpy(out.data() + at + entry_header_bytes, envelope.data(), envelope.size());
  const auto end = at + entry_bytes(envelope.size());
  std::memset(out.data() + at + entry_header_bytes + envelope.size(), 0,
              end - (at + entry_header_bytes + envelope.size()));
  return end;
}

std::size_t encode_frag(std::span<std::byte> out, std::uint64_t publisher_id, const Frag& f) noexcept {
  put_header(out, Type::frag, 0, publisher_id);
  put<std::uint64_t>(out, 16, f.seq);
  put<std::uint32_t>(out, 24, f.msg_len);
  put<std::uint32_t>(out, 28, f.frag_size);
  put<std::uint32_t>(out, 32, f.index);
  put<std::uint32_t>(out, 36, f.count);
  put<std::uint32_t>(out, 40, f.offset);
  put<std::uint32_t>(out, 44, 0);
  std::memcpy(out.data() + frag_header_bytes, f.bytes.data(), f.bytes.size());
  return frag_header_bytes + f.bytes.size();
}

std::size_t encode_heartbeat(std::span<std::byte> out, Type type, std::uint64_t publisher_id, std::uint8_t flags,
                             const Heartbeat& h) noexcept {
  put_header(out, type, flags, publisher_id);
  put<std::uint64_t>(out, 16, h.next_seq);
  put<std::uint64_t>(out, 24, h.oldest_seq);
  return 32;
}

std::size_t encode_welcome(std::span<std::byte> out, std::uint64_t publisher_id, const Welcome& w,
                           bool durable) noexcept {
  put_header(out, Type::welcome, durable ? flag_durable : 0, publisher_id);
  put<std::uint64_t>(out, 16, w.subscription_id);
  put<std::uint64_t>(out, 24, w.next_seq);
  if (!durable) return 32;
  put<std::uint64_t>(out, 32, w.lost);
  return 40;
}

std::size_t encode_filtered(std::span<std::byte> out, std::uint64_t publisher_id, std::uint64_t subscription_id,
                            std::uint64_t next_seq) noexcept {
  const auto n = encode_welcome(out, publisher_id, {subscription_id, next_seq, 0}, false);
  put<std::uint8_t>(out, 5, flag_filtered);
  return n;
}

std::size_t encode_reject(std::span<std::byte> out, std::uint64_t publisher_id, const Reject& r) noexcept {
  put_header(out, Type::reject, 0, publisher_id);
  put<std::uint64_t>(out, 16, r.subscription_id);
  put<std::uint8_t>(out, 24, r.offered);
  put<std::uint8_t>(out, 25, r.requested);
  const auto len = static_cast<std::uint16_t>(std::min(r.reason.size(), max_name_bytes));
  put<std::uint16_t>(out, 26, len);
  put<std::uint32_t>(out, 28, 0);
  std::memcpy(out.data() + 32, r.reason.data(), len);
  return 32u + len;
}

std::size_t encode_status(std::span<std::byte> out, std::uint64_t publisher_id, std::uint8_t flags, const Status& s,
                          const DurableRequest* durable) noexcept {
  auto f = static_cast<std::uint8_t>(durable != nullptr ? flags | flag_durable : flags & ~flag_durable);
  f = static_cast<std::uint8_t>(s.group.empty() ? f & ~flag_group : f | flag_group);
  put_header(out, Type::status, f, publisher_id);
  put<std::uint64_t>(out, 16, s.subscription_id);
  put<std::uint64_t>(out, 24, s.received_seq);
  put<std::uint64_t>(out, 32, s.consumed_seq);
  put<std::uint32_t>(out, 40, s.window);
  put<std::uint8_t>(out, 44, s.policy);
  put<std::uint8_t>(out, 45, 0);
  const auto len = static_cast<std::uint16_t>(std::min(s.prefix.size(), max_prefix_bytes));
  put<std::uint16_t>(out, 46, len);
  std::memcpy(out.data() + 48, s.prefix.data(), len);
  std::size_t at = 48u + len;
  if (durable != nullptr) {
    const auto& q = *durable;
    const auto name_len = static_cast<std::uint16_t>(std::min(q.name.size(), max_name_bytes));
    put<std::uint8_t>(out, at, q.kind);
    put<std::uint8_t>(out, at + 1, q.from);
    put<std::uint16_t>(out, at + 2, name_len);
    put<std::uint32_t>(out, at + 4, q.history);
    put<std::uint64_t>(out, at + 8, q.ack_seq);
    std::memcpy(out.data() + at + durable_block_bytes, q.name.data(), name_len);
    at += durable_block_bytes + name_len;
  }
  if (s.group.empty()) return at;
  const auto group_len = static_cast<std::uint16_t>(std::min(s.group.size(), max_name_bytes));
  put<std::uint16_t>(out, at, group_len);
  put<std::uint16_t>(out, at + 2, 0);
  std::memcpy(out.data() + at + group_block_bytes, s.group.data(), group_len);
  return at + group_block_bytes + group_len;
}

std::size_t encode_nak(std::span<std::byte> out, std::uint64_t publisher_id, const Nak& n) noexcept {
  put_header(out, Type::nak, 0, publisher_id);
  put<std::uint64_t>(out, 16, n.subscription_id);
  const auto count = std::min<std::size_t>(n.count, max_nak_ranges);
  put<std::uint16_t>(out, 24, static_cast<std::uint16_t>(count));
  put<std::uint16_t>(out, 26, 0);
  put<std::uint32_t>(out, 28, 0);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t at = 32 + 24 * i;
    put<std::uint64_t>(out, at, n.ranges[i].first);
    put<std::uint64_t>(out, at + 8, n.ranges[i].last);
    put<std::uint32_t>(out, at + 16, n.ranges[i].frag_first);
    put<std::uint32_t>(out, at + 20, n.ranges[i].frag_last);
  }
  return 32 + 24 * count;
}

std::size_t encode_leave(std::span<std::byte> out, std::uint64_t publisher_id, std::uint64_t subscription_id) noexcept {
  put_header(out, Type::leave, 0, publisher_id);
  put<std::uint64_t>(out, 16, subscription_id);
  return 24;
}

void mark_retransmit(std::span<std::byte> dgram) noexcept {
  if (dgram.size() > 5) dgram[5] |= std::byte{flag_retransmit};
}

void mark_history(std::span<std::byte> dgram) noexcept {
  if (dgram.size() > 5) dgram[5] |= std::byte{flag_durable};
}

void mark_group(std::span<std::byte> dgram) noexcept {
  if (dgram.size() > 5) dgram[5] |= std::byte{flag_group};
}

}  // namespace rill::detail::udp
