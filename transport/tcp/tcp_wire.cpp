#include "tcp_wire.hpp"

#include <bit>
#include <algorithm>
#include <cstring>

namespace rill::detail::tcp {

namespace {

static_assert(std::endian::native == std::endian::little, "the wire is little-endian; add byte swaps here");

constexpr std::size_t header_bytes = 8;  // magic(4) type(1) reserved(3)

template <class T>
void put(std::span<std::byte> out, std::size_t at, T value) noexcept {
  std::memcpy(out.data() + at, &value, sizeof(T));
}

template <class T>
T get(std::span<const std::byte> in, std::size_t at) noexcept {
  T value;
  std::memcpy(&value, in.data() + at, sizeof(T));
  return value;
}

// memcpy of an empty view may be handed a null pointer, which memcpy must never get.
void copy_text(std::span<std::byte> out, std::size_t at, std::string_view text) noexcept {
  if (!text.empty()) std::memcpy(out.data() + at, text.data(), text.size());
}

std::size_t header(std::span<std::byte> out, ControlType type) noexcept {
  std::memcpy(out.data(), control_magic, 4);
  out[4] = static_cast<std::byte>(type);
  out[5] = out[6] = out[7] = std::byte{0};
  return header_bytes;
}

}  // namespace

bool is_batch(std::span<const std::byte> frame) noexcept {
  return frame.size() >= batch_header_bytes && std::memcmp(frame.data(), batch_magic, 4) == 0;
}

bool is_control(std::span<const std::byte> frame) noexcept {
  return frame.size() >= header_bytes && std::memcmp(frame.data(), control_magic, 4) == 0;
}

std::optional<Control> decode_control(std::span<const std::byte> f) noexcept {
  if (!is_control(f) || f.size() > max_control_bytes) return std::nullopt;
  Control c;
  c.type = static_cast<ControlType>(f[4]);
  switch (c.type) {
    case ControlType::subscribe: {
      if (f.size() < 32) return std::nullopt;
      auto& s = c.subscribe;
      s.subscription_id = get<std::uint64_t>(f, 8);
      s.policy = static_cast<std::uint8_t>(f[16]);
      s.durability = static_cast<std::uint8_t>(f[17]);
      const std::size_t len = get<std::uint16_t>(f, 18);
      s.window = get<std::uint32_t>(f, 20);
      s.from = static_cast<std::uint8_t>(f[24]);
      const std::size_t name_len = static_cast<std::uint8_t>(f[25]);
      const std::size_t group_len = static_cast<std::uint8_t>(f[26]);
      s.history = get<std::uint32_t>(f, 28);
      if (len > max_prefix_bytes || f.size() != 32u + len + name_len + group_len) return std::nullopt;
      if (s.policy < 1 || s.policy > 4 || s.durability > 2 || s.from > 2 || f[27] != std::byte{0}) return std::nullopt;
      const auto* text = reinterpret_cast<const char*>(f.data() + 32);
      s.prefix = {text, len};
      s.durable_name = {text + len, name_len};
      s.group = {text + len + name_len, group_len};
      return c;
    }
    case ControlType::ack:
    case ControlType::bye_seen:
      if (f.size() != 32) return std::nullopt;
      c.ack = {get<std::uint64_t>(f, 8), get<std::uint64_t>(f, 16), get<std::uint64_t>(f, 24)};
      return c;
    case ControlType::reject: {
      if (f.size() < 32) return std::nullopt;
      auto& r = c.reject;
      r.publisher_id = get<std::uint64_t>(f, 8);
      r.subscription_id = get<std::uint64_t>(f, 16);
      r.offered = static_cast<std::uint8_t>(f[24]);
      r.requested = static_cast<std::uint8_t>(f[25]);
      const std::size_t len = get<std::uint16_t>(f, 26);
      if (r.offered > 2 || r.requested > 2 || len > max_reason_bytes || f.size() != 32u + len) return std::nullopt;
      r.reason = {reinterpret_cast<const char*>(f.data() + 32), len};
      return c;
    }
    case ControlType::credit:
      if (f.size() != 28) return std::nullopt;
      c.credit = {get<std::uint64_t>(f, 8), get<std::uint64_t>(f, 16), get<std::uint32_t>(f, 24)};
      return c;
    case ControlType::unsubscribe:
      if (f.size() != 16) return std::nullopt;
      c.subscribe.subscription_id = get<std::uint64_t>(f, 8);
      return c;
    case ControlType::welcome:
      if (f.size() != 48 || static_cast<std::uint8_t>(f[5]) > 2) return std::nullopt;
      c.welcome = {get<std::uint64_t>(f, 8), get<std::uint64_t>(f, 16), get<std::uint64_t>(f, 24),
                   get<std::uint64_t>(f, 32), static_cast<std::uint8_t>(f[5]), get<std::uint64_t>(f, 40)};
      return c;
    case ControlType::bye:
      if (f.size() != 24) return std::nullopt;
      c.bye = {get<std::uint64_t>(f, 8), get<std::uint64_t>(f, 16)};
      return c;
    case ControlType::ping:
      if (f.size() != header_bytes) return std::nullopt;
      return c;
  }
  return std::nullopt;
}

std::size_t encode_subscribe(std::span<std::byte> out, const Subscribe& s) noexcept {
  const auto len = static_cast<std::uint16_t>(std::min(s.prefix.size(), max_prefix_bytes));
  const auto name_len = std::min(s.durable_name.size(), max_name_bytes);
  const auto group_len = std::min(s.group.size(), max_name_bytes);
  header(out, ControlType::subscribe);
  put(out, 8, s.subscription_id);
  out[16] = static_cast<std::byte>(s.policy);
  out[17] = static_cast<std::byte>(s.durability);
  put(out, 18, len);
  put(out, 20, s.window);
  out[24] = static_cast<std::byte>(s.from);
  out[25] = static_cast<std::byte>(name_len);
  out[26] = static_cast<std::byte>(group_len);
  out[27] = std::byte{0};
  put(out, 28, s.history);
  copy_text(out, 32, s.prefix.substr(0, len));
  copy_text(out, 32 + len, s.durable_name.substr(0, name_len));
  copy_text(out, 32 + len + name_len, s.group.substr(0, group_len));
  return 32u + len + name_len + group_len;
}

std::size_t encode_ack(std::span<std::byte> out, const Ack& a) noexcept {
  header(out, ControlType::ack);
  put(out, 8, a.subscription_id);
  put(out, 16, a.publisher_id);
  put(out, 24, a.seq);
  return 32;
}

std::size_t encode_bye_seen(std::span<std::byte> out, const Ack& a) noexcept {
  encode_ack(out, a);
  out[4] = static_cast<std::byte>(ControlType::bye_seen);
  return 32;
}

std::size_t encode_reject(std::span<std::byte> out, const Reject& r) noexcept {
  const auto len = static_cast<std::uint16_t>(std::min(r.reason.size(), max_reason_bytes));
  header(out, ControlType::reject);
  put(out, 8, r.publisher_id);
  put(out, 16, r.subscription_id);
  out[24] = static_cast<std::byte>(r.offered);
  out[25] = static_cast<std::byte>(r.requested);
  put(out, 26, len);
  put(out, 28, std::uint32_t{0});
  copy_text(out, 32, r.reason.substr(0, len));
  return 32u + len;
}

std::size_t encode_credit(std::span<std::byte> out, const Credit& c) noexcept {
  header(out, ControlType::credit);
  put(out, 8, c.subscription_id);
  put(out, 16, c.publisher_id);
  put(out, 24, c.credits);
  return 28;
}

std::size_t encode_unsubscribe(std::span<std::byte> out, std::uint64_t subscription_id) noexcept {
  header(out, ControlType::unsubscribe);
  put(out, 8, subscription_id);
  return 16;
}

std::size_t encode_welcome(std::span<std::byte> out, const Welcome& w) noexcept {
  header(out, ControlType::welcome);
  out[5] = static_cast<std::byte>(w.offered);
  put(out, 8, w.publisher_id);
  put(out, 16, w.next_seq);
  put(out, 24, w.subscription_id);
  put(out, 32, w.lost);
  put(out, 40, w.instance);
  return 48;
}

std::size_t encode_bye(std::span<std::byte> out, const Bye& b) noexcept {
  header(out, ControlType::bye);
  put(out, 8, b.publisher_id);
  put(out, 16, b.last_seq);
  return 24;
}

std::size_t encode_ping(std::span<std::byte> out) noexcept { return header(out, ControlType::ping); }

}  // namespace rill::detail::tcp
