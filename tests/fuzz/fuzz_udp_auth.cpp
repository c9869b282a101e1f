// Fuzz target for the authenticated udp datagram path (transport/udp/udp_auth.hpp):
// the check that runs before anything else reads a datagram, its replay window, and
// the decoder behind it with the auth marker.
//
// Input: one mode byte, then records [u8 op][u16 length][bytes]... with one fixed key.
//   op bit 0 clear: the bytes arrive as they are (a forgery: it must never pass; a fuzzer
//                   cannot produce the MAC)
//   op bit 0 set:   the bytes are sealed by a real sender first (they pass exactly once,
//                   and the decoder then sees them with the marker); op bit 1 set: a bit
//                   of the sealed datagram, chosen by the next two input bytes, is flipped
//                   first (it must be refused); op bit 2: the sealed datagram is sent twice
//                   (the second is a replay)
//   op bits 3..4:   the receiving scope (group / unicast); a mismatch must be refused
// mode bit 0: the receiver has no key (it must refuse whatever carries the marker).
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "fuzz_check.hpp"
#include "transport/udp/udp_auth.hpp"
#include "transport/udp/udp_wire.hpp"

namespace {

namespace udp = rill::detail::udp;
using rill::fuzz::expect;

volatile std::uint64_t g_sink = 0;

std::shared_ptr<const udp::AuthKeys> fixed_keys() {
  static const auto keys = [] {
    std::array<unsigned char, 32> k{};
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<unsigned char>(i);
    return udp::AuthKeys::from(std::span(&k, 1));
  }();
  return keys;
}

void decode_body(std::span<const std::byte> body, bool authenticated) {
  const auto d = udp::decode(body, 1u << 20, authenticated);
  if (!d) return;
  g_sink = g_sink + static_cast<std::uint64_t>(d->header.type) + d->header.publisher_id;
  if (d->header.type == udp::Type::data) {
    udp::for_each_entry(body, d->data.count, [&](std::uint32_t, std::size_t off, std::size_t len) {
      expect(off <= body.size() && len <= body.size() - off, "DATA entry out of bounds after auth");
    });
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool keyless = (data[0] & 1) != 0;
  std::span<const std::uint8_t> in(data + 1, size - 1);
  const auto keys = fixed_keys();
  udp::Sealer sealer(keys);
  udp::Verifier verifier(keyless ? nullptr : keys, 0);
  udp::ReplayFilter replay;
  const auto now = udp::unix_seconds();
  while (in.size() >= 3) {
    const std::uint8_t op = in[0];
    std::size_t len = in[1] | (in[2] << 8);
    in = in.subspan(3);
    len = std::min(len, in.size());
    std::vector<std::byte> bytes(len);
    if (len > 0) std::memcpy(bytes.data(), in.data(), len);
    in = in.subspan(len);
    const std::uint8_t scope = (op & 0x08) != 0 ? udp::scope_unicast : udp::scope_group;
    const std::uint8_t receive_scope = (op & 0x10) != 0 ? udp::scope_unicast : udp::scope_group;
    std::span<const std::byte> body;
    if ((op & 1) == 0 || bytes.size() < 16) {
      const auto v = verifier.check(bytes, receive_scope, replay, now, body);
      if (!keyless) expect(v != udp::AuthVerdict::ok, "an unsealed datagram passed the MAC check");
      if (keyless) {
        const bool marked = bytes.size() > 6 && bytes[6] == std::byte{udp::auth_marker};
        expect((v == udp::AuthVerdict::ok) == !marked, "a keyless receiver took a marked datagram");
      }
      if (v == udp::AuthVerdict::ok) decode_body(body, false);
      continue;
    }
    std::array<std::byte, 16> head{};
    std::array<std::byte, udp::auth_trailer_bytes> trailer{};
    sealer.seal(bytes, scope, head, trailer);
    std::vector<std::byte> wire(head.begin(), head.end());
    wire.insert(wire.end(), bytes.begin() + 16, bytes.end());
    wire.insert(wire.end(), trailer.begin(), trailer.end());
    bool flipped = false;
    if ((op & 2) != 0 && in.size() >= 2) {
      const std::size_t bit = (in[0] | (in[1] << 8)) % (wire.size() * 8);
      in = in.subspan(2);
      wire[bit / 8] ^= std::byte(1u << (bit % 8));
      flipped = true;
    }
    const auto v = verifier.check(wire, receive_scope, replay, now, body);
    if (keyless) {
      // A flip may clear the marker: that is a plain datagram (with trailing bytes) to it.
      expect((v == udp::AuthVerdict::ok) == (wire[6] != std::byte{udp::auth_marker}),
             "a keyless receiver took a marked datagram or refused a plain one");
      continue;
    }
    if (flipped || scope != receive_scope) {
      expect(v != udp::AuthVerdict::ok, "a flipped or misdirected sealed datagram passed");
      continue;
    }
    expect(v == udp::AuthVerdict::ok, "a sealed datagram was refused");
    expect(body.size() == bytes.size(), "the body is not the sealed datagram");
    expect(std::memcmp(body.data() + 16, bytes.data() + 16, bytes.size() - 16) == 0, "the body changed");
    decode_body(body, true);
    if ((op & 4) != 0) {
      expect(verifier.check(wire, receive_scope, replay, now, body) == udp::AuthVerdict::replayed,
             "a replayed datagram passed");
    }
  }
  return 0;
}
