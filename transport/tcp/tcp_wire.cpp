#include "tcp_wire.hpp"

#include <bit>
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
      if (f.size() < 24) return std::nullopt;
      c.subscribe.subscription_id = get<std::uint64_t>(f, 8);
      c.subscribe.policy = static_cast<std::uint8_t>(f[16]);
      c.subscribe.durability = static_cast<std::uint8_t>(f[17]);
      const auto len = get<std::uint16_t>(f, 18);
      c.subscribe.window = get<std::uint32_t>(f, 20);
      if (len > max_prefix_bytes || f.size() != 24u + len) return std::nullopt;
      if (c.subscribe.policy < 1 || c.subscribe.policy > 4) return std::nullopt;
      c.subscribe.prefix = {reinterpret_cast<const char*>(f.data() + 24), len};
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
      if (f.size() != 32) return std::nullopt;
      c.welcome = {get<std::uint64_t>(f, 8), get<std::uint64_t>(f, 16), get<std::uint64_t>(f, 24)};
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
  header(out, ControlType::subscribe);
  put(out, 8, s.subscription_id);
  out[16] = static_cast<std::byte>(s.policy);
  out[17] = static_cast<std::byte>(s.durability);
  put(out, 18, len);
  put(out, 20, s.window);
  std::memcpy(out.data() + 24, s.prefix.data(), len);
  return 24u + len;
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
  put(out, 8, w.publisher_id);
  put(out, 16, w.next_seq);
  put(out, 24, w.subscription_id);
  return 32;
}

std::size_t encode_bye(std::span<std::byte> out, const Bye& b) noexcept {
  header(out, ControlType::bye);
  put(out, 8, b.publisher_id);
  put(out, 16, b.last_seq);
  return 24;
}

std::size_t encode_ping(std::span<std::byte> out) noexcept { return header(out, ControlType::ping); }

}  // namespace rill::detail::tcp
