// Fuzz target for the udp datagram decoder and the receive stream's reassembler
// (transport/udp/udp_wire.hpp, udp_stream.hpp).
//
// Input: one mode byte (bit 0: reliable, bit 1: a durable subscription), then datagrams
// as [u16 length][bytes]...
// Every datagram goes through decode(); what it accepts must have the documented
// shape (DATA entries inside the datagram and 8-aligned, FRAG geometry exact,
// control datagrams re-encode to the same bytes). Accepted datagrams then drive one
// PublisherStream as the subscriber would; its promises are checked: sequences reach
// the sink strictly increasing, every delivered byte is readable, reassembly memory
// stays within its bound and is all returned when the stream goes away.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "fuzz_check.hpp"
#include "transport/udp/udp_stream.hpp"
#include "transport/udp/udp_wire.hpp"

namespace {

namespace udp = rill::detail::udp;
using rill::fuzz::expect;

volatile std::uint64_t g_sink = 0;
constexpr std::size_t max_message = 1u << 16;
constexpr std::size_t reassembly_limit = 1u << 18;

struct CheckingSink final : rill::detail::FrameSink {
  std::uint64_t frames = 0;
  void on_data(rill::detail::Frame&& f) override {
    const auto b = f.bytes();
    expect(!b.empty() && b.size() <= max_message, "delivered an empty or oversized frame");
    std::uint64_t h = 0;
    for (auto x : b) h = h * 31 + static_cast<std::uint8_t>(x);
    g_sink = g_sink + h;
    ++frames;
  }
  void on_welcome(std::uint32_t, std::uint64_t, std::uint64_t next, std::uint64_t, std::uint64_t) override {
    expect(next != 0, "welcome at 0");
  }
  void on_reject(std::uint32_t, std::uint64_t, rill::DurabilityKind, rill::DurabilityKind, std::string_view) override {}
  void on_bye(std::uint32_t, std::uint64_t, std::uint64_t) override {}
  void on_bad_frame(std::uint32_t, rill::Errc, std::size_t) override {}
};

void check_shape(std::span<const std::byte> d, const udp::Datagram& g) {
  std::array<std::byte, udp::max_control_bytes + 32 * 24> buf{};
  std::size_t n = 0;
  switch (g.header.type) {
    case udp::Type::data: {
      std::size_t last_end = udp::data_header_bytes;
      udp::for_each_entry(d, g.data.count, [&](std::uint32_t, std::size_t off, std::size_t len) {
        expect(off % 8 == 0, "DATA entry not 8-aligned");
        expect(off >= last_end && len > 0 && off <= d.size() && len <= d.size() - off, "DATA entry out of bounds");
        last_end = off + len;
      });
      return;
    }
    case udp::Type::frag: {
      const auto& f = g.frag;
      expect(f.index < f.count && std::uint64_t{f.index} * f.frag_size == f.offset, "FRAG offset");
      expect(f.offset + f.bytes.size() <= f.msg_len && f.msg_len <= max_message, "FRAG past its message");
      return;
    }
    case udp::Type::heartbeat:
    case udp::Type::bye:
      n = udp::encode_heartbeat(buf, g.header.type, g.header.publisher_id, g.header.flags, g.heartbeat);
      break;
    case udp::Type::welcome:
      if ((g.header.flags & ~udp::flag_durable) != 0) return;  // encode_welcome writes flags 0 or durable
      n = udp::encode_welcome(buf, g.header.publisher_id, g.welcome, g.header.flags == udp::flag_durable);
      break;
    case udp::Type::reject:
      if (g.header.flags != 0) return;
      n = udp::encode_reject(buf, g.header.publisher_id, g.reject);
      break;
    case udp::Type::status:
      n = udp::encode_status(buf, g.header.publisher_id, g.header.flags, g.status, g.durable ? &g.request : nullptr);
      break;
    case udp::Type::nak:
      if (g.header.flags != 0) return;
      n = udp::encode_nak(buf, g.header.publisher_id, g.nak);
      break;
    case udp::Type::leave:
      if (g.header.flags != 0) return;
      n = udp::encode_leave(buf, g.header.publisher_id, g.leave_subscription);
      break;
  }
  expect(n == d.size() && std::memcmp(buf.data(), d.data(), n) == 0, "decoded control does not re-encode to itself");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool reliable = (data[0] & 1) != 0;
  const bool durable = (data[0] & 2) != 0;
  const bool group = (data[0] & 4) != 0;  // a consumer group member's own stream
  std::size_t in_use = 0;
  udp::StreamCounters counters;
  CheckingSink sink;
  {
    udp::PublisherStream stream(7, 0, sockaddr_in{},
                                {.reliable = reliable,
                                 .max_message = max_message,
                                 .reassembly_bytes = reassembly_limit,
                                 .durable = durable,
                                 .group = group},
                                in_use, counters);
    const auto now = std::chrono::steady_clock::now();
    std::size_t at = 1;
    unsigned step = 0;
    while (size - at >= 2) {
      std::uint16_t len = 0;
      std::memcpy(&len, data + at, 2);
      at += 2;
      len = static_cast<std::uint16_t>(std::min<std::size_t>(len, size - at));
      // Exact-size buffer as the subscriber's pool would hold it: ASan sees overreads.
      udp::Buffer* b = udp::allocate_buffer(len);
      if (len != 0) std::memcpy(b->data(), data + at, len);
      at += len;
      const std::span<const std::byte> d(b->data(), len);
      const auto g = udp::decode(d, max_message);
      if (g) {
        check_shape(d, *g);
        switch (g->header.type) {
          case udp::Type::data:
            udp::for_each_entry(d, g->data.count, [&](std::uint32_t i, std::size_t off, std::size_t n) {
              stream.on_envelope(g->data.first_seq + i, b, off, n);
            });
            break;
          case udp::Type::frag:
            stream.on_fragment(g->frag);
            break;
          case udp::Type::heartbeat:
          case udp::Type::bye:
            // Odd steps: as if it came unicast (a NAK answer), which a durable stream trusts.
            stream.on_heartbeat(g->heartbeat, g->header.type == udp::Type::bye, now, (step & 1) != 0);
            break;
          case udp::Type::welcome:
            stream.welcome(g->welcome.next_seq, g->welcome.lost, sink);
            break;
          default:
            break;
        }
      }
      udp::release(b);
      expect(in_use <= reassembly_limit, "reassembly memory past its bound");
      const auto before = stream.received_seq();
      stream.deliver(sink, (step++ % 3) + 1);
      expect(stream.received_seq() >= before, "delivery went backwards");
      udp::Nak nak;
      if (stream.take_nak(now + std::chrono::seconds(step), nak, 0.5)) {
        expect(nak.count > 0 && nak.count <= udp::max_nak_ranges, "NAK range count");
        for (std::uint16_t i = 0; i < nak.count; ++i) {
          expect(nak.ranges[i].first <= nak.ranges[i].last && nak.ranges[i].first > stream.received_seq(),
                 "NAK for something already delivered");
        }
      }
    }
    stream.expire(now + std::chrono::hours(1), std::chrono::milliseconds(1));
    stream.deliver(sink, 1u << 20);
  }
  expect(in_use == 0, "reassembly memory not returned");
  return 0;
}
