// UDP datagrams, the retransmit window and the receive stream (reassembly, ordering,
// NAKs, give-up), driven directly with no sockets.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "transport/udp/udp_wire.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstring>
#include <numeric>
#include <vector>

#include "transport/udp/udp_stream.hpp"
#include "transport/udp/udp_window.hpp"

using namespace rill::detail;
using namespace rill::detail::udp;
using clock_type = std::chrono::steady_clock;

namespace {

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

// Records what a stream hands over, in order.
struct RecordingSink final : FrameSink {
  std::vector<std::string> data;
  std::uint64_t welcome_seq = 0;
  std::uint64_t bye_seq = 0;
  int bad = 0;
  void on_data(Frame&& f) override {
    const auto b = f.bytes();
    data.emplace_back(reinterpret_cast<const char*>(b.data()), b.size());
  }
  void on_welcome(std::uint32_t, std::uint64_t, std::uint64_t next, std::uint64_t, std::uint64_t) override { welcome_seq = next; }
  void on_reject(std::uint32_t, std::uint64_t, rill::DurabilityKind, rill::DurabilityKind, std::string_view) override {}
  void on_bye(std::uint32_t, std::uint64_t, std::uint64_t last) override { bye_seq = last; }
  void on_bad_frame(std::uint32_t, rill::Errc, std::size_t) override { ++bad; }
};

// A one-envelope DATA datagram in a pool-less buffer (as the subscriber would hold it).
struct OneMessage {
  Buffer* buffer;
  std::size_t offset;
  std::size_t length;
  explicit OneMessage(std::string_view text) {
    buffer = allocate_buffer(512);
    std::span<std::byte> out(buffer->data(), 512);
    encode_data_header(out, 7, 1, 1);
    const auto end = append_entry(out, data_header_bytes, bytes_of(text));
    offset = data_header_bytes + entry_header_bytes;
    length = text.size();
    (void)end;
  }
  ~OneMessage() { release(buffer); }
};

struct StreamFixture {
  std::size_t in_use = 0;
  StreamCounters counters;
  RecordingSink sink;
  sockaddr_in from{};
  std::unique_ptr<PublisherStream> stream;
  explicit StreamFixture(bool reliable, std::size_t reassembly = 1u << 20) {
    stream = std::make_unique<PublisherStream>(
        7, 0, from, StreamLimits{.reliable = reliable, .max_message = 1u << 20, .reassembly_bytes = reassembly}, in_use,
        counters);
  }
  void message(std::uint64_t seq) {
    std::string text = "m";
    text += std::to_string(seq);
    OneMessage m(text);
    stream->on_envelope(seq, m.buffer, m.offset, m.length);
  }
};

}  // namespace

TEST_CASE("a DATA datagram with several envelopes round-trips and every entry is 8-aligned") {
  std::array<std::byte, 1472> buf{};
  encode_data_header(buf, 42, 100, 3);
  std::size_t at = data_header_bytes;
  for (auto s : {"a", "bcdefghij", "klm"}) at = append_entry(buf, at, bytes_of(s));
  const auto d = decode(std::span(buf).first(at), 1u << 20);
  REQUIRE(d);
  CHECK(d->header.type == Type::data);
  CHECK(d->header.publisher_id == 42);
  CHECK(d->data.first_seq == 100);
  CHECK(d->data.count == 3);
  std::vector<std::string> seen;
  for_each_entry(std::span(buf).first(at), 3, [&](std::uint32_t, std::size_t off, std::size_t len) {
    CHECK(off % 8 == 0);
    seen.emplace_back(reinterpret_cast<const char*>(buf.data() + off), len);
  });
  CHECK(seen == std::vector<std::string>{"a", "bcdefghij", "klm"});
}

TEST_CASE("DATA with a lying count or length, or trailing bytes, is refused") {
  std::array<std::byte, 256> buf{};
  encode_data_header(buf, 42, 1, 2);
  auto at = append_entry(buf, data_header_bytes, bytes_of("hello"));
  at = append_entry(buf, at, bytes_of("world"));
  REQUIRE(decode(std::span(buf).first(at), 1024));
  CHECK_FALSE(decode(std::span(buf).first(at + 8), 1024));  // trailing entry header
  for (std::size_t len = 0; len < at - 7; ++len) CHECK_FALSE(decode(std::span(buf).first(len), 1024));
  auto bad = buf;
  bad[24] = std::byte{3};  // count 3
  CHECK_FALSE(decode(std::span(bad).first(at), 1024));
  bad = buf;
  bad[data_header_bytes] = std::byte{200};  // first length past the end
  CHECK_FALSE(decode(std::span(bad).first(at), 1024));
  bad = buf;
  bad[16] = std::byte{0};  // first_seq 0
  CHECK_FALSE(decode(std::span(bad).first(at), 1024));
}

TEST_CASE("wrong magic, version, reserved bytes, publisher 0 and unknown types are refused") {
  std::array<std::byte, 64> buf{};
  const auto n = encode_heartbeat(buf, Type::heartbeat, 5, 0, {10, 3});
  REQUIRE(decode(std::span(buf).first(n), 1024));
  for (std::size_t i : {0u, 1u, 2u, 3u, 6u, 7u}) {
    auto bad = buf;
    bad[i] ^= std::byte{0x5a};
    CHECK_FALSE(decode(std::span(bad).first(n), 1024));
  }
  auto bad = buf;
  std::memset(bad.data() + 8, 0, 8);
  CHECK_FALSE(decode(std::span(bad).first(n), 1024));
  for (int t : {0, 6, 0x10, 0x14, 0xff}) {
    bad = buf;
    bad[4] = std::byte(t);
    CHECK_FALSE(decode(std::span(bad).first(n), 1024));
  }
  bad = buf;
  bad[24] = std::byte{11};  // oldest beyond next
  CHECK_FALSE(decode(std::span(bad).first(n), 1024));
}

TEST_CASE("FRAG geometry must be exact: offsets, lengths, counts and the size limit") {
  std::vector<std::byte> msg(2500, std::byte{'q'});
  std::array<std::byte, 1100> buf{};
  const auto frag = [&](std::uint32_t index, std::uint32_t count, std::uint32_t offset, std::size_t len) {
    return encode_frag(buf, 9,
                       {.seq = 4,
                        .msg_len = 2500,
                        .frag_size = 1000,
                        .index = index,
                        .count = count,
                        .offset = offset,
                        .bytes = std::span(msg).first(len)});
  };
  auto n = frag(2, 3, 2000, 500);
  auto d = decode(std::span(buf).first(n), 1u << 20);
  REQUIRE(d);
  CHECK((d->frag.seq == 4 && d->frag.index == 2 && d->frag.bytes.size() == 500));
  CHECK_FALSE(decode(std::span(buf).first(n), 2499));                          // over the size limit
  CHECK_FALSE(decode(std::span(buf).first(frag(2, 3, 1999, 500)), 1u << 20));  // offset not index * size
  CHECK_FALSE(decode(std::span(buf).first(frag(2, 3, 2000, 499)), 1u << 20));  // short last piece
  CHECK_FALSE(decode(std::span(buf).first(frag(1, 3, 1000, 999)), 1u << 20));  // short middle piece
  CHECK_FALSE(decode(std::span(buf).first(frag(3, 3, 3000, 0)), 1u << 20));    // index past count
  CHECK_FALSE(decode(std::span(buf).first(frag(0, 4, 0, 1000)), 1u << 20));    // count disagrees
}

TEST_CASE("STATUS, NAK, WELCOME and LEAVE round-trip; bad ranges are refused") {
  std::array<std::byte, max_control_bytes> buf{};
  auto n = encode_status(
      buf, 3, flag_reliable | flag_welcomed,
      {.subscription_id = 5, .received_seq = 10, .consumed_seq = 8, .window = 64, .policy = 4, .prefix = "md/"});
  auto d = decode(std::span(buf).first(n), 1024);
  REQUIRE(d);
  CHECK((d->status.subscription_id == 5 && d->status.received_seq == 10 && d->status.consumed_seq == 8));
  CHECK((d->status.window == 64 && d->status.policy == 4 && d->status.prefix == "md/"));
  CHECK(d->header.flags == (flag_reliable | flag_welcomed));
  CHECK_FALSE(decode(std::span(buf).first(n - 1), 1024));  // prefix length lies

  Nak nak;
  nak.subscription_id = 5;
  nak.count = 2;
  nak.ranges[0] = {3, 9, 0, all_fragments};
  nak.ranges[1] = {12, 12, 4, 7};
  n = encode_nak(buf, 3, nak);
  d = decode(std::span(buf).first(n), 1024);
  REQUIRE(d);
  CHECK(d->nak.count == 2);
  CHECK((d->nak.ranges[1].first == 12 && d->nak.ranges[1].frag_first == 4 && d->nak.ranges[1].frag_last == 7));
  nak.ranges[1] = {12, 11, 0, all_fragments};  // backwards
  CHECK_FALSE(decode(std::span(buf).first(encode_nak(buf, 3, nak)), 1024));
  nak.ranges[1] = {12, 14, 1, 2};  // fragment range over several messages
  CHECK_FALSE(decode(std::span(buf).first(encode_nak(buf, 3, nak)), 1024));

  n = encode_welcome(buf, 3, {.subscription_id = 5, .next_seq = 77});
  d = decode(std::span(buf).first(n), 1024);
  REQUIRE(d);
  CHECK((d->header.type == Type::welcome && d->welcome.next_seq == 77));
  n = encode_leave(buf, 3, 5);
  d = decode(std::span(buf).first(n), 1024);
  REQUIRE(d);
  CHECK(d->leave_subscription == 5);
}

TEST_CASE("durable STATUS, durable WELCOME and REJECT round-trip; every lying field is refused") {
  std::array<std::byte, max_control_bytes> buf{};
  const Status st{
      .subscription_id = 5, .received_seq = 10, .consumed_seq = 8, .window = 64, .policy = 4, .prefix = "md/"};
  const DurableRequest q{.kind = 2, .from = 1, .history = 0, .ack_seq = 9, .name = "audit"};
  auto n = encode_status(buf, 3, flag_reliable, st, &q);
  CHECK(n == 48 + 3 + durable_block_bytes + 5);
  auto d = decode(std::span(buf).first(n), 1024);
  REQUIRE(d);
  CHECK(d->header.flags == (flag_reliable | flag_durable));
  CHECK(d->durable);
  CHECK((d->request.kind == 2 && d->request.from == 1 && d->request.ack_seq == 9 && d->request.name == "audit"));
  CHECK(d->status.prefix == "md/");
  CHECK_FALSE(decode(std::span(buf).first(n - 1), 1024));       // name length lies
  CHECK_FALSE(decode(std::span(buf).first(48 + 3 + 8), 1024));  // block cut short
  // A plain STATUS carries no block; flag_durable without one is refused.
  n = encode_status(buf, 3, flag_reliable, st);
  d = decode(std::span(buf).first(n), 1024);
  REQUIRE(d);
  CHECK_FALSE(d->durable);
  buf[5] |= std::byte{flag_durable};
  CHECK_FALSE(decode(std::span(buf).first(n), 1024));
  const auto refused = [&](DurableRequest bad) {
    return !decode(std::span(buf).first(encode_status(buf, 3, 0, st, &bad)), 1024);
  };
  CHECK(refused({.kind = 0, .from = 0, .history = 0, .ack_seq = 0, .name = ""}));  // volatile is no request
  CHECK(refused({.kind = 3, .from = 0, .history = 0, .ack_seq = 0, .name = ""}));  // unknown kind
  CHECK(refused({.kind = 2, .from = 3, .history = 0, .ack_seq = 0, .name = ""}));  // unknown from
  CHECK(refused({.kind = 2, .from = 0, .history = 0, .ack_seq = max_sequence, .name = ""}));
  const std::string long_name(max_name_bytes, 'n');
  CHECK_FALSE(refused({.kind = 2, .from = 0, .history = 0, .ack_seq = 0, .name = long_name}));
  n = encode_status(buf, 3, 0, st, &q);
  const std::uint16_t too_long = max_name_bytes + 1;
  std::memcpy(buf.data() + 48 + 3 + 2, &too_long, 2);
  CHECK_FALSE(decode(std::span(buf).first(n), 1024));

  n = encode_welcome(buf, 3, {.subscription_id = 5, .next_seq = 77, .lost = 40}, true);
  CHECK(n == 40);
  d = decode(std::span(buf).first(n), 1024);
  REQUIRE(d);
  CHECK((d->welcome.next_seq == 77 && d->welcome.lost == 40));
  CHECK_FALSE(decode(std::span(buf).first(32), 1024));  // flag says 40 bytes
  n = encode_welcome(buf, 3, {.subscription_id = 5, .next_seq = 77, .lost = 77}, true);
  CHECK_FALSE(decode(std::span(buf).first(n), 1024));  // lost more than came before

  n = encode_filtered(buf, 3, 5, 9);  // "your prefix does not match my topic"
  CHECK(n == 32);
  d = decode(std::span(buf).first(n), 1024);
  REQUIRE(d);
  CHECK((d->header.type == Type::welcome && (d->header.flags & flag_filtered) != 0 && d->welcome.subscription_id == 5));
  buf[5] = std::byte{flag_filtered | flag_durable};  // filtered and durable at once: malformed
  CHECK_FALSE(decode(std::span(buf).first(n), 1024));

  n = encode_reject(buf, 3, {.subscription_id = 5, .offered = 1, .requested = 2, .reason = "less offered"});
  d = decode(std::span(buf).first(n), 1024);
  REQUIRE(d);
  CHECK(d->header.type == Type::reject);
  CHECK((d->reject.subscription_id == 5 && d->reject.offered == 1 && d->reject.requested == 2));
  CHECK(d->reject.reason == "less offered");
  CHECK_FALSE(decode(std::span(buf).first(n - 1), 1024));
  buf[24] = std::byte{7};  // no such durability
  CHECK_FALSE(decode(std::span(buf).first(n), 1024));
}

TEST_CASE("a group member's STATUS carries its group after the durable block; every lying field is refused") {
  std::array<std::byte, max_control_bytes> buf{};
  Status st{.subscription_id = 5, .received_seq = 10, .consumed_seq = 8, .window = 64, .policy = 4, .prefix = "md/"};
  st.group = "workers";
  const DurableRequest q{.kind = 2, .from = 0, .history = 0, .ack_seq = 9, .name = "w"};
  // Durable member: prefix, durable block, group block.
  auto n = encode_status(buf, 3, flag_reliable, st, &q);
  CHECK(n == 48 + 3 + durable_block_bytes + 1 + group_block_bytes + 7);
  auto d = decode(std::span(buf).first(n), 1024);
  REQUIRE(d);
  CHECK(d->header.flags == (flag_reliable | flag_durable | flag_group));
  CHECK((d->durable && d->request.name == "w" && d->request.ack_seq == 9));
  CHECK(d->status.group == "workers");
  CHECK(d->status.prefix == "md/");
  CHECK_FALSE(decode(std::span(buf).first(n - 1), 1024));  // group name cut short
  auto longer = buf;
  CHECK_FALSE(decode(std::span(longer).first(n + 1), 1024));  // a trailing byte
  // Volatile member: the group block follows the prefix.
  n = encode_status(buf, 3, flag_reliable, st);
  CHECK(n == 48 + 3 + group_block_bytes + 7);
  d = decode(std::span(buf).first(n), 1024);
  REQUIRE(d);
  CHECK_FALSE(d->durable);
  CHECK(d->status.group == "workers");
  const auto at = 48 + 3;
  auto bad = buf;
  bad[at + 2] = std::byte{1};  // reserved
  CHECK_FALSE(decode(std::span(bad).first(n), 1024));
  bad = buf;
  bad[at] = std::byte{0};  // an empty group name
  bad[at + 1] = std::byte{0};
  CHECK_FALSE(decode(std::span(bad).first(n), 1024));
  bad = buf;
  const std::uint16_t too_long = max_name_bytes + 1;
  std::memcpy(bad.data() + at, &too_long, 2);
  CHECK_FALSE(decode(std::span(bad).first(n), 1024));
  // The flag without a block is refused; a fan-out STATUS has neither.
  st.group = {};
  n = encode_status(buf, 3, flag_reliable | flag_group, st);
  d = decode(std::span(buf).first(n), 1024);
  REQUIRE(d);
  CHECK((d->header.flags & flag_group) == 0);
  CHECK(d->status.group.empty());
  buf[5] |= std::byte{flag_group};
  CHECK_FALSE(decode(std::span(buf).first(n), 1024));
}

TEST_CASE("the retransmit window evicts oldest first, finds by sequence and fragment, reports its oldest") {
  RetransmitWindow w(4096, 8);
  for (std::uint64_t s = 1; s <= 6; ++s) {
    auto out = w.open(100);
    std::memset(out.data(), static_cast<int>(s), 100);
    w.commit(100, s * 2 - 1, 2, false, 0);  // datagram s holds messages 2s-1, 2s
  }
  CHECK(w.size() == 6);
  CHECK(w.oldest_seq(13) == 1);
  std::vector<std::uint64_t> found;
  w.find(4, 7, 0, all_fragments, [&](auto& r) { found.push_back(r.first_seq); });
  CHECK(found == std::vector<std::uint64_t>{3, 5, 7});
  for (std::uint64_t s = 7; s <= 12; ++s) w.commit((w.open(100), 100), s * 2 - 1, 2, false, 0);
  CHECK(w.size() == 8);  // count bound
  CHECK(w.oldest_seq(25) == 9);
  // A fragmented message: only the asked-for fragments come back.
  for (std::uint32_t i = 0; i < 4; ++i) w.commit((w.open(1000), 1000), 25, 1, true, i);
  CHECK(w.bytes() <= 4096);  // byte bound
  found.clear();
  w.find(25, 25, 1, 2, [&](auto& r) { found.push_back(r.frag_index); });
  CHECK(found == std::vector<std::uint64_t>{1, 2});
  // Once fragment 0 is evicted, the message cannot be completed: oldest moves past it.
  w.commit((w.open(1000), 1000), 26, 1, false, 0);
  CHECK(w.oldest_seq(27) == 26);
}

TEST_CASE("reliable stream: reordered and duplicated input is delivered once, in order") {
  StreamFixture f(true);
  f.stream->welcome(1, f.sink);
  CHECK(f.sink.welcome_seq == 1);
  for (std::uint64_t s : {3, 1, 2, 2, 5, 1, 4}) f.message(s);
  f.stream->deliver(f.sink, 100);
  CHECK(f.sink.data == std::vector<std::string>{"m1", "m2", "m3", "m4", "m5"});
  CHECK(f.counters.duplicates == 2);
}

TEST_CASE("reliable stream: a gap is NAKed after back-off, then given up when no longer retained") {
  StreamFixture f(true);
  f.stream->welcome(1, f.sink);
  for (std::uint64_t s : {1, 2, 5, 8}) f.message(s);
  f.stream->deliver(f.sink, 100);
  CHECK(f.sink.data.size() == 2);
  const auto t0 = clock_type::now();
  Nak nak;
  CHECK_FALSE(f.stream->take_nak(t0, nak, 0.5));  // back-off starts
  REQUIRE(f.stream->take_nak(t0 + std::chrono::milliseconds(5), nak, 0.5));
  REQUIRE(nak.count == 2);
  CHECK((nak.ranges[0].first == 3 && nak.ranges[0].last == 4));
  CHECK((nak.ranges[1].first == 6 && nak.ranges[1].last == 7));
  CHECK_FALSE(f.stream->take_nak(t0 + std::chrono::milliseconds(6), nak, 0.5));  // retry waits
  // A heartbeat says 3 and 4 are gone and the tail reaches 10: 3-4 are skipped, 6-7 and 9-10 asked.
  f.stream->on_heartbeat({.next_seq = 11, .oldest_seq = 5}, false, t0);
  f.stream->deliver(f.sink, 100);
  CHECK(f.sink.data == std::vector<std::string>{"m1", "m2", "m5"});
  CHECK(f.counters.unrecoverable == 2);
  REQUIRE(f.stream->take_nak(t0 + std::chrono::milliseconds(40), nak, 0.5));
  REQUIRE(nak.count == 2);
  CHECK((nak.ranges[0].first == 6 && nak.ranges[0].last == 7 && nak.ranges[1].first == 9 && nak.ranges[1].last == 10));
  for (std::uint64_t s : {6, 7, 9, 10}) f.message(s);
  f.stream->deliver(f.sink, 100);
  CHECK(f.sink.data.back() == "m10");
  CHECK(f.stream->received_seq() == 10);
}

TEST_CASE("reliable stream: BYE is reported only after everything before it was delivered or given up") {
  StreamFixture f(true);
  f.stream->welcome(1, f.sink);
  f.message(1);
  f.stream->on_heartbeat({.next_seq = 4, .oldest_seq = 1}, true, clock_type::now());
  f.stream->deliver(f.sink, 100);
  CHECK(f.sink.bye_seq == 0);
  f.message(3);
  f.message(2);
  f.stream->deliver(f.sink, 100);
  CHECK(f.sink.bye_seq == 3);
  CHECK(f.sink.data.size() == 3);
}

TEST_CASE("best effort stream: nothing is waited for; late arrivals are dropped") {
  StreamFixture f(false);
  f.stream->welcome(1, f.sink);
  for (std::uint64_t s : {1, 3, 2, 6}) {
    f.message(s);
    f.stream->deliver(f.sink, 100);
  }
  CHECK(f.sink.data == std::vector<std::string>{"m1", "m3", "m6"});
  Nak nak;
  CHECK_FALSE(f.stream->take_nak(clock_type::now() + std::chrono::seconds(1), nak, 0));
}

TEST_CASE("data before the WELCOME is not delivered; the welcome sets the baseline") {
  StreamFixture f(true);
  f.message(5);
  f.stream->deliver(f.sink, 100);
  CHECK(f.sink.data.empty());
  f.stream->welcome(5, f.sink);
  f.message(5);
  f.stream->deliver(f.sink, 100);
  CHECK(f.sink.data == std::vector<std::string>{"m5"});
}

namespace {

// Fragments of one message as the publisher cuts them.
std::vector<Frag> cut(std::uint64_t seq, const std::vector<std::byte>& msg, std::uint32_t frag_size) {
  std::vector<Frag> out;
  const auto count = fragment_count(msg.size(), frag_size);
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::size_t off = std::size_t{i} * frag_size;
    out.push_back({.seq = seq,
                   .msg_len = static_cast<std::uint32_t>(msg.size()),
                   .frag_size = frag_size,
                   .index = i,
                   .count = count,
                   .offset = static_cast<std::uint32_t>(off),
                   .bytes = std::span(msg).subspan(off, std::min<std::size_t>(frag_size, msg.size() - off))});
  }
  return out;
}

}  // namespace

TEST_CASE("fragments reassemble in any order; a lost one is NAKed by fragment range") {
  StreamFixture f(true);
  f.stream->welcome(1, f.sink);
  std::vector<std::byte> msg(10000);
  for (std::size_t i = 0; i < msg.size(); ++i) msg[i] = std::byte(i * 7);
  auto frags = cut(1, msg, 1000);
  for (int i : {9, 0, 5, 1, 2, 3, 4, 7, 8}) f.stream->on_fragment(frags[static_cast<std::size_t>(i)]);  // 6 lost
  f.stream->on_fragment(frags[2]);                                                                      // duplicate
  f.stream->deliver(f.sink, 10);
  CHECK(f.sink.data.empty());
  CHECK(f.in_use == 10000);
  const auto t0 = clock_type::now();
  Nak nak;
  f.stream->take_nak(t0, nak, 0);
  REQUIRE(f.stream->take_nak(t0 + std::chrono::milliseconds(3), nak, 0));
  REQUIRE(nak.count == 1);
  CHECK((nak.ranges[0].first == 1 && nak.ranges[0].frag_first == 6 && nak.ranges[0].frag_last == 6));
  f.stream->on_fragment(frags[6]);
  f.stream->deliver(f.sink, 10);
  REQUIRE(f.sink.data.size() == 1);
  CHECK(std::memcmp(f.sink.data[0].data(), msg.data(), msg.size()) == 0);
  CHECK(f.in_use == 0);
  CHECK(f.counters.duplicates == 1);
}

TEST_CASE("reassembly memory is bounded; only the message delivery waits for may push others out") {
  StreamFixture f(true, 25000);
  f.stream->welcome(1, f.sink);
  std::vector<std::byte> msg(10000, std::byte{1});
  const auto a = cut(2, msg, 1000), b = cut(3, msg, 1000), c = cut(4, msg, 1000), head = cut(1, msg, 1000);
  f.stream->on_fragment(a[0]);
  f.stream->on_fragment(b[0]);
  f.stream->on_fragment(c[0]);  // would pass 25000: refused
  CHECK(f.counters.reassembly_refused == 1);
  CHECK(f.in_use == 20000);
  for (const auto& x : head) f.stream->on_fragment(x);  // the head evicts the newest partial
  CHECK(f.in_use <= 25000);
  f.stream->deliver(f.sink, 10);
  CHECK(f.sink.data.size() == 1);
}

TEST_CASE("best effort: an unfinished message is dropped and counted when a newer one starts") {
  StreamFixture f(false);
  f.stream->welcome(1, f.sink);
  std::vector<std::byte> msg(5000, std::byte{2});
  const auto one = cut(1, msg, 1000), two = cut(2, msg, 1000);
  f.stream->on_fragment(one[0]);
  f.stream->on_fragment(one[1]);
  for (const auto& x : two) f.stream->on_fragment(x);
  f.stream->deliver(f.sink, 10);
  CHECK(f.sink.data.size() == 1);
  CHECK(f.counters.incomplete == 1);
  CHECK(f.in_use == 0);
}

TEST_CASE("a heartbeat announcing a far tail is skipped in one step, counted, and what is held is still delivered") {
  StreamFixture f(true);
  f.stream->welcome(1, f.sink);
  f.message(1);
  f.message(3);
  constexpr std::uint64_t far = 1'000'000'000'000ull;
  f.stream->on_heartbeat({.next_seq = far, .oldest_seq = far}, false, clock_type::now());
  f.stream->deliver(f.sink, 100);  // would loop ~10^12 times without the jump
  CHECK(f.sink.data == std::vector<std::string>{"m1", "m3"});
  CHECK(f.stream->received_seq() == far - 1);
  CHECK(f.counters.unrecoverable == far - 1 - 2);
}

TEST_CASE("the retransmit window's byte ring never overwrites a live datagram, whatever the sizes") {
  RetransmitWindow w(10000, 64);
  std::uint64_t seq = 1;
  for (int round = 0; round < 2000; ++round) {
    const std::size_t len = 1 + static_cast<std::size_t>((round * 7919) % 3000);
    auto out = w.open(len);
    REQUIRE(out.size() >= len);
    std::memset(out.data(), static_cast<int>(seq & 0xff), len);
    w.commit(len, seq, 1, false, 0);
    ++seq;
    REQUIRE(w.bytes() <= 10000);
    // Every record still in the window holds exactly what was written into it.
    for (std::size_t i = 0; i < w.size(); ++i) {
      auto& r = w.at(i);
      const auto b = r.bytes();
      bool intact = true;
      for (auto x : b) intact = intact && x == std::byte(static_cast<unsigned char>(r.first_seq & 0xff));
      REQUIRE_MESSAGE(intact, "record " << r.first_seq << " overwritten");
    }
  }
  CHECK(w.size() >= 3);  // 10000 bytes hold at least three of the largest
}
