// Fuzz target for the TCP control-frame decoder (transport/tcp/tcp_wire.cpp).
//
// decode_control promises to accept unaligned frames and to hand back a prefix view
// into the frame; every decoded field, and every byte of that view, is read so ASan
// reports a view that reaches past the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>

#include "fuzz_check.hpp"
#include "transport/tcp/tcp_wire.hpp"

namespace {

namespace tcp = rill::detail::tcp;
using rill::fuzz::expect;

// Every value read lands here so the optimizer cannot drop the reads.
volatile std::uint64_t g_sink = 0;

void touch(std::string_view s) {
  std::uint64_t h = s.size();
  for (char c : s) h = h * 131 + static_cast<unsigned char>(c);
  g_sink = g_sink + h;
}

void check(const tcp::Control& c, std::span<const std::byte> frame) {
  // Members the type does not use are read too: decode_control value-initialises them.
  g_sink = g_sink + static_cast<std::uint8_t>(c.type);
  g_sink = g_sink + c.subscribe.subscription_id + c.subscribe.policy + c.subscribe.durability + c.subscribe.window;
  g_sink = g_sink + c.credit.subscription_id + c.credit.publisher_id + c.credit.credits;
  g_sink = g_sink + c.welcome.publisher_id + c.welcome.next_seq + c.welcome.subscription_id;
  g_sink = g_sink + c.bye.publisher_id + c.bye.last_seq;
  g_sink = g_sink + c.ack.subscription_id + c.ack.publisher_id + c.ack.seq;
  g_sink = g_sink + c.reject.publisher_id + c.reject.subscription_id + c.reject.offered + c.reject.requested;
  touch(c.subscribe.prefix);
  touch(c.subscribe.durable_name);
  touch(c.subscribe.group);
  touch(c.reject.reason);

  // The contract, beyond memory safety: only frames that look like control frames
  // decode, and a prefix view lies inside the frame and within its bound.
  expect(tcp::is_control(frame), "decoded a frame without the control magic");
  expect(frame.size() <= tcp::max_control_bytes, "decoded a frame longer than max_control_bytes");
  const auto* lo = reinterpret_cast<const char*>(frame.data());
  const auto* hi = lo + frame.size();
  const auto& p = c.subscribe.prefix;
  expect(p.empty() || (p.data() >= lo && p.data() + p.size() <= hi), "prefix view outside the frame");
  expect(p.size() <= tcp::max_prefix_bytes, "prefix longer than max_prefix_bytes");
}

// Re-encodes a decoded frame; the encoders are the decoder's inverse except for the
// reserved bytes (three in the header, four in REJECT), which the decoder ignores.
void check_round_trip(const tcp::Control& c, std::span<const std::byte> frame) {
  std::byte out[tcp::max_control_bytes];
  std::size_t n = 0;
  switch (c.type) {
    case tcp::ControlType::subscribe: n = tcp::encode_subscribe(out, c.subscribe); break;
    case tcp::ControlType::credit: n = tcp::encode_credit(out, c.credit); break;
    case tcp::ControlType::unsubscribe: n = tcp::encode_unsubscribe(out, c.subscribe.subscription_id); break;
    case tcp::ControlType::welcome: n = tcp::encode_welcome(out, c.welcome); break;
    case tcp::ControlType::bye: n = tcp::encode_bye(out, c.bye); break;
    case tcp::ControlType::ping: n = tcp::encode_ping(out); break;
    case tcp::ControlType::ack: n = tcp::encode_ack(out, c.ack); break;
    case tcp::ControlType::bye_seen: n = tcp::encode_bye_seen(out, c.ack); break;
    case tcp::ControlType::reject: n = tcp::encode_reject(out, c.reject); break;
    default: expect(false, "decoded an unknown control type"); return;
  }
  expect(n == frame.size(), "re-encoded frame has a different length");
  expect(std::memcmp(out, frame.data(), 5) == 0, "re-encoded header differs");
  // REJECT's bytes 28..31 are reserved too (PROTOCOL.md 4.7): written 0, not read.
  const std::size_t skip_from = c.type == tcp::ControlType::reject ? 28 : n;
  const std::size_t skip_to = c.type == tcp::ControlType::reject ? 32 : n;
  expect(std::memcmp(out + 8, frame.data() + 8, skip_from - 8) == 0, "re-encoded body differs");
  expect(std::memcmp(out + skip_to, frame.data() + skip_to, n - skip_to) == 0, "re-encoded body differs");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Exact-size heap copy: ASan's redzone starts right after the last input byte.
  auto buf = std::make_unique_for_overwrite<std::byte[]>(size);
  if (size != 0) std::memcpy(buf.get(), data, size);
  const std::span<const std::byte> frame{buf.get(), size};
  g_sink = g_sink + tcp::is_control(frame);
  const auto c = tcp::decode_control(frame);
  if (c) {
    check(*c, frame);
    check_round_trip(*c, frame);
  }

  // Fields are read with memcpy, so an odd address must decode the same way.
  auto shifted = std::make_unique_for_overwrite<std::byte[]>(size + 1);
  if (size != 0) std::memcpy(shifted.get() + 1, data, size);
  const std::span<const std::byte> odd{shifted.get() + 1, size};
  const auto c2 = tcp::decode_control(odd);
  expect(c2.has_value() == c.has_value(), "alignment changed whether a frame decodes");
  if (c2) {
    check(*c2, odd);
    expect(c2->type == c->type && c2->subscribe.prefix == c->subscribe.prefix, "alignment changed the decoded frame");
  }
  return 0;
}
