// The envelope codec: one-pass typed payloads, raw payloads, headers, and a verifier
// that rejects every kind of damage before a field is read.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "rill/message.hpp"
#include "rill/message_builder.hpp"
#include "test_payload_generated.h"

namespace {

// Copies bytes to an 8-aligned buffer, as a transport's receive path would deliver them.
struct Aligned {
  std::vector<std::uint64_t> words;
  std::size_t size;
  explicit Aligned(std::span<const std::byte> b) : words((b.size() + 7) / 8 + 1), size(b.size()) {
    std::memcpy(words.data(), b.data(), b.size());
  }
  std::span<const std::byte> bytes() const { return {reinterpret_cast<const std::byte*>(words.data()), size}; }
  std::byte* data() { return reinterpret_cast<std::byte*>(words.data()); }
};

rill::EnvelopeFields fields(std::span<const rill::HeaderKV> headers = {}) {
  return {.topic = "orders/eu", .publisher_id = 0xabcdef0123456789ull, .sequence = 42, .timestamp_ns = 1700000000123456789, .headers = headers};
}

std::span<const std::byte> build_order(rill::MessageBuilder& b) {
  b.reset();
  auto& fbb = b.fbb();
  std::vector<flatbuffers::Offset<rilltest::Leg>> legs;
  for (int i = 0; i < 3; ++i) legs.push_back(rilltest::CreateLeg(fbb, fbb.CreateString("venue-" + std::to_string(i)), 100u * i));
  std::vector<std::uint8_t> blob(1000, 0x5a);
  auto order = rilltest::CreateOrder(fbb, 7, fbb.CreateString("ACME"), 101.25, fbb.CreateVector(legs), fbb.CreateVector(blob));
  return b.finish(order, fields());
}

}  // namespace

TEST_CASE("a typed payload built in place reads back through the envelope") {
  rill::MessageBuilder b;
  Aligned buf(build_order(b));
  auto env = rill::verify_envelope(buf.bytes());
  REQUIRE(env.has_value());
  rill::MessageView m(*env, buf.bytes());
  CHECK(m.topic() == "orders/eu");
  CHECK(m.publisher_id() == 0xabcdef0123456789ull);
  CHECK(m.sequence() == 42);
  CHECK(m.timestamp_ns() == 1700000000123456789);
  const auto* order = m.payload_as<rilltest::Order>();
  REQUIRE(order != nullptr);
  CHECK(order->id() == 7);
  CHECK(order->symbol()->string_view() == "ACME");
  CHECK(order->price() == 101.25);
  REQUIRE(order->legs()->size() == 3);
  CHECK(order->legs()->Get(2)->venue()->string_view() == "venue-2");
  CHECK(order->legs()->Get(2)->qty() == 200);
  CHECK(order->blob()->size() == 1000);
  // The payload is read where it lies inside the envelope: no second buffer.
  CHECK(m.payload().data() >= buf.bytes().data());
  CHECK(m.payload().data() + m.payload().size() <= buf.bytes().data() + buf.bytes().size());
}

TEST_CASE("raw payloads and headers round-trip") {
  rill::MessageBuilder b;
  const rill::HeaderKV hs[] = {{"content-type", "text/plain"}, {"trace", ""}};
  const std::string text = "hello rill";
  b.reset();
  Aligned buf(b.finish_raw(std::as_bytes(std::span(text)), fields(hs)));
  auto env = rill::verify_envelope(buf.bytes());
  REQUIRE(env.has_value());
  rill::MessageView m(*env, buf.bytes());
  CHECK(m.payload_text() == "hello rill");
  CHECK(m.header_count() == 2);
  CHECK(m.header("content-type") == std::optional<std::string_view>("text/plain"));
  CHECK(m.header("trace") == std::optional<std::string_view>(""));
  CHECK_FALSE(m.header("missing").has_value());
  CHECK(m.header_at(0).key == "content-type");
  CHECK(reinterpret_cast<std::uintptr_t>(m.payload().data()) % 8 == 0);  // raw payloads are 8-aligned
}

TEST_CASE("a raw payload is not mistaken for a typed one") {
  rill::MessageBuilder b;
  const std::string text = "not a flatbuffer";
  b.reset();
  Aligned buf(b.finish_raw(std::as_bytes(std::span(text)), fields()));
  auto env = rill::verify_envelope(buf.bytes());
  REQUIRE(env.has_value());
  CHECK(rill::MessageView(*env, buf.bytes()).payload_as<rilltest::Order>() == nullptr);
}

TEST_CASE("every truncation of a valid envelope is rejected") {
  rill::MessageBuilder b;
  const auto full = build_order(b);
  for (std::size_t len = 0; len < full.size(); ++len) {
    Aligned buf(full.first(len));
    auto env = rill::verify_envelope(buf.bytes());
    // A cut envelope either fails verification or (never) reads past its end.
    if (env) FAIL("truncated envelope of " << len << " bytes verified");
  }
}

TEST_CASE("bit flips are either rejected or stay inside the buffer") {
  rill::MessageBuilder b;
  const auto full = build_order(b);
  std::size_t rejected = 0;
  for (std::size_t i = 0; i < full.size(); i += 3) {
    Aligned buf(full);
    buf.data()[i] ^= std::byte{0x80};
    auto env = rill::verify_envelope(buf.bytes());
    if (!env) {
      ++rejected;
      CHECK(env.error().code == rill::Errc::malformed);
      continue;
    }
    // Verified: reading every field must stay in bounds (ASan proves it in CI).
    rill::MessageView m(*env, buf.bytes());
    (void)m.topic();
    (void)m.payload();
    for (std::size_t h = 0; h < m.header_count(); ++h) (void)m.header_at(h);
    (void)m.payload_as<rilltest::Order>();
  }
  CHECK(rejected > 0);
}

TEST_CASE("unaligned, oversize and foreign buffers are refused with the right code") {
  rill::MessageBuilder b;
  const auto full = build_order(b);
  std::vector<std::uint64_t> words(full.size() / 8 + 2);
  auto* base = reinterpret_cast<std::byte*>(words.data());
  std::memcpy(base + 1, full.data(), full.size());
  CHECK(rill::verify_envelope({base + 1, full.size()}).error().code == rill::Errc::malformed);

  Aligned ok(full);
  CHECK(rill::verify_envelope(ok.bytes(), {.max_bytes = full.size() - 1}).error().code == rill::Errc::too_large);

  Aligned foreign(full);
  std::memcpy(foreign.data() + 4, "XXXX", 4);
  CHECK(rill::verify_envelope(foreign.bytes()).error().code == rill::Errc::malformed);
}

TEST_CASE("the verifier's table limit bounds what a peer can make us walk") {
  rill::MessageBuilder b;
  std::vector<rill::HeaderKV> many(256, rill::HeaderKV{"k", "v"});
  b.reset();
  Aligned buf(b.finish_raw({}, fields(many)));
  CHECK(rill::verify_envelope(buf.bytes()).has_value());  // 256 headers + the envelope fit the default 260 tables
  CHECK(rill::verify_envelope(buf.bytes(), {.max_tables = 100}).error().code == rill::Errc::malformed);
}

TEST_CASE("the header-less envelope written as bytes verifies for every topic and payload length") {
  // write_plain_envelope lays the envelope out by hand; the strict verifier (alignment
  // checked) must accept it and every field must read back, whatever the lengths.
  rill::MessageBuilder b;
  for (std::size_t topic_len = 0; topic_len <= 24; ++topic_len) {
    for (std::size_t payload_len = 0; payload_len <= 40; payload_len += 3) {
      const std::string topic(topic_len, 't');
      std::vector<std::byte> payload(payload_len, std::byte{0x5a});
      b.reset();
      const auto env = b.finish_raw(payload, {.topic = topic, .publisher_id = 7, .sequence = payload_len + 1, .timestamp_ns = -5, .headers = {}});
      CHECK(env.size() % 8 == 0);
      Aligned a(env);
      auto v = rill::verify_envelope(a.bytes());
      REQUIRE(v);
      const rill::MessageView m(*v, a.bytes());
      CHECK(m.topic() == topic);
      CHECK(m.publisher_id() == 7);
      CHECK(m.sequence() == payload_len + 1);
      CHECK(m.timestamp_ns() == -5);
      CHECK(m.payload().size() == payload_len);
      CHECK(reinterpret_cast<std::uintptr_t>(m.payload().data()) % 8 == 0);
      CHECK(std::equal(payload.begin(), payload.end(), m.payload().begin()));
    }
  }
  // A typed payload nested the same way.
  b.reset();
  auto& fbb = b.fbb();
  auto order = rilltest::CreateOrder(fbb, 5, fbb.CreateString("XYZ"), 2.5);
  const auto env = b.finish(order, {.topic = "o", .publisher_id = 1, .sequence = 1, .timestamp_ns = 1, .headers = {}});
  Aligned a(env);
  auto v = rill::verify_envelope(a.bytes());
  REQUIRE(v);
  const rill::MessageView m(*v, a.bytes());
  const auto* o = m.payload_as<rilltest::Order>();
  REQUIRE(o != nullptr);
  CHECK(o->id() == 5);
  CHECK(o->symbol()->str() == "XYZ");
}
