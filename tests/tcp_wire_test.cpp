// TCP control frames: every encoder round-trips; every malformed shape is refused.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <array>
#include <cstring>
#include <vector>

#include "transport/tcp/tcp_wire.hpp"

using namespace rill::detail::tcp;

TEST_CASE("subscribe round-trips with its prefix") {
  std::array<std::byte, max_control_bytes> buf;
  const auto n = encode_subscribe(buf, {.subscription_id = 9, .policy = 4, .durability = 0, .window = 64, .prefix = "md/"});
  const auto c = decode_control(std::span(buf).first(n));
  REQUIRE(c.has_value());
  CHECK(c->type == ControlType::subscribe);
  CHECK(c->subscribe.subscription_id == 9);
  CHECK(c->subscribe.policy == 4);
  CHECK(c->subscribe.window == 64);
  CHECK(c->subscribe.prefix == "md/");
}

TEST_CASE("credit, welcome, bye, unsubscribe and ping round-trip") {
  std::array<std::byte, max_control_bytes> buf;
  auto n = encode_credit(buf, {.subscription_id = 1, .publisher_id = 2, .credits = 3});
  auto c = decode_control(std::span(buf).first(n));
  REQUIRE(c);
  CHECK((c->credit.subscription_id == 1 && c->credit.publisher_id == 2 && c->credit.credits == 3));
  n = encode_welcome(buf, {.publisher_id = 5, .next_seq = 6, .subscription_id = 7});
  c = decode_control(std::span(buf).first(n));
  REQUIRE(c);
  CHECK((c->welcome.publisher_id == 5 && c->welcome.next_seq == 6 && c->welcome.subscription_id == 7));
  n = encode_bye(buf, {.publisher_id = 8, .last_seq = 9});
  c = decode_control(std::span(buf).first(n));
  REQUIRE(c);
  CHECK((c->type == ControlType::bye && c->bye.last_seq == 9));
  n = encode_unsubscribe(buf, 11);
  c = decode_control(std::span(buf).first(n));
  REQUIRE(c);
  CHECK((c->type == ControlType::unsubscribe && c->subscribe.subscription_id == 11));
  n = encode_ping(buf);
  CHECK(decode_control(std::span(buf).first(n))->type == ControlType::ping);
}

TEST_CASE("durable subscribe, ack, reject and the extended welcome round-trip") {
  std::array<std::byte, max_control_bytes> buf;
  auto n = encode_subscribe(buf, {.subscription_id = 9,
                                  .policy = 4,
                                  .durability = 2,
                                  .window = 64,
                                  .from = 1,
                                  .history = 77,
                                  .prefix = "md/",
                                  .durable_name = "audit",
                                  .group = "workers"});
  CHECK(n == 32 + 3 + 5 + 7);
  auto c = decode_control(std::span(buf).first(n));
  REQUIRE(c);
  CHECK(c->subscribe.durability == 2);
  CHECK(c->subscribe.from == 1);
  CHECK(c->subscribe.history == 77);
  CHECK(c->subscribe.prefix == "md/");
  CHECK(c->subscribe.durable_name == "audit");
  CHECK(c->subscribe.group == "workers");
  for (std::size_t len = 0; len < n; ++len) CHECK_FALSE(decode_control(std::span(buf).first(len)).has_value());
  auto bad = buf;
  bad[17] = std::byte{3};  // no such durability
  CHECK_FALSE(decode_control(std::span(bad).first(n)));
  bad = buf;
  bad[25] = std::byte{6};  // the name runs into the group
  CHECK_FALSE(decode_control(std::span(bad).first(n)));

  n = encode_ack(buf, {.subscription_id = 1, .publisher_id = 2, .seq = 3});
  c = decode_control(std::span(buf).first(n));
  REQUIRE(c);
  CHECK((c->type == ControlType::ack && c->ack.subscription_id == 1 && c->ack.publisher_id == 2 && c->ack.seq == 3));
  CHECK_FALSE(decode_control(std::span(buf).first(n - 1)));

  n = encode_reject(buf, {.publisher_id = 4, .subscription_id = 5, .offered = 0, .requested = 2, .reason = "why"});
  c = decode_control(std::span(buf).first(n));
  REQUIRE(c);
  CHECK((c->type == ControlType::reject && c->reject.publisher_id == 4 && c->reject.subscription_id == 5));
  CHECK((c->reject.offered == 0 && c->reject.requested == 2 && c->reject.reason == "why"));
  for (std::size_t len = 0; len < n; ++len) CHECK_FALSE(decode_control(std::span(buf).first(len)).has_value());

  n = encode_welcome(
      buf, {.publisher_id = 5, .next_seq = 6, .subscription_id = 7, .lost = 8, .offered = 1, .instance = 9});
  CHECK(n == 48);
  c = decode_control(std::span(buf).first(n));
  REQUIRE(c);
  CHECK((c->welcome.lost == 8 && c->welcome.offered == 1 && c->welcome.instance == 9));

  n = encode_bye_seen(buf, {.subscription_id = 1, .publisher_id = 2, .seq = 3});
  CHECK(n == 32);
  c = decode_control(std::span(buf).first(n));
  REQUIRE(c);
  CHECK((c->type == ControlType::bye_seen && c->ack.subscription_id == 1 && c->ack.publisher_id == 2 &&
         c->ack.seq == 3));
}

TEST_CASE("every truncation and extension of a control frame is refused") {
  std::array<std::byte, max_control_bytes + 16> buf{};
  const auto n = encode_subscribe(buf, {.subscription_id = 9, .policy = 1, .durability = 0, .window = 0, .prefix = "abc"});
  for (std::size_t len = 0; len < n; ++len) CHECK_FALSE(decode_control(std::span(buf).first(len)).has_value());
  CHECK_FALSE(decode_control(std::span(buf).first(n + 1)).has_value());
}

TEST_CASE("unknown types, bad policies and lying prefix lengths are refused") {
  std::array<std::byte, max_control_bytes> buf;
  auto n = encode_subscribe(buf, {.subscription_id = 9, .policy = 1, .durability = 0, .window = 0, .prefix = "abc"});
  auto bad = buf;
  bad[4] = std::byte{0x7f};
  CHECK_FALSE(decode_control(std::span(bad).first(n)));
  bad = buf;
  bad[16] = std::byte{9};  // policy 9 does not exist
  CHECK_FALSE(decode_control(std::span(bad).first(n)));
  bad = buf;
  bad[18] = std::byte{0xff};  // prefix length says 255 bytes, frame holds 3
  CHECK_FALSE(decode_control(std::span(bad).first(n)));
  CHECK_FALSE(is_control(std::as_bytes(std::span("RILL....", 8))));
}

namespace {

// Lays out a batch frame the way the publisher does.
std::vector<std::byte> make_batch(const std::vector<std::size_t>& sizes) {
  std::vector<std::byte> f(batch_header_bytes);
  std::memcpy(f.data(), batch_magic, 4);
  const auto count = static_cast<std::uint32_t>(sizes.size());
  std::memcpy(f.data() + 4, &count, 4);
  for (const auto n : sizes) {
    const auto at = f.size();
    f.resize(at + batch_entry_header_bytes + ((n + 7) & ~std::size_t{7}));
    const auto len = static_cast<std::uint32_t>(n);
    std::memcpy(f.data() + at, &len, 4);
    for (std::size_t i = 0; i < n; ++i) f[at + batch_entry_header_bytes + i] = std::byte{0xab};
  }
  return f;
}

}  // namespace

TEST_CASE("a batch frame yields each envelope's span, 8-aligned within the frame") {
  const auto f = make_batch({20, 8, 33});
  REQUIRE(is_batch(f));
  std::vector<std::pair<std::size_t, std::size_t>> seen;
  CHECK(for_each_in_batch(std::span<const std::byte>(f), [&](std::size_t at, std::size_t n) { seen.emplace_back(at, n); }));
  REQUIRE(seen.size() == 3);
  CHECK(seen[0] == std::pair<std::size_t, std::size_t>{16, 20});
  CHECK(seen[1] == std::pair<std::size_t, std::size_t>{16 + 24 + 8, 8});
  CHECK(seen[2].second == 33);
  for (const auto& [at, n] : seen) CHECK(at % 8 == 0);
}

TEST_CASE("a lying batch delivers nothing") {
  const auto good = make_batch({20, 8});
  auto visits = 0;
  const auto count_visits = [&](std::size_t, std::size_t) { ++visits; };
  auto f = good;
  std::uint32_t more = 3;  // claims a third envelope that is not there
  std::memcpy(f.data() + 4, &more, 4);
  CHECK_FALSE(for_each_in_batch(std::span<const std::byte>(f), count_visits));
  f = good;
  std::uint32_t huge = 1u << 30;  // first length runs past the end
  std::memcpy(f.data() + 8, &huge, 4);
  CHECK_FALSE(for_each_in_batch(std::span<const std::byte>(f), count_visits));
  f = good;
  f.resize(f.size() + 8);  // trailing bytes nobody accounts for
  CHECK_FALSE(for_each_in_batch(std::span<const std::byte>(f), count_visits));
  for (std::size_t len = 0; len < good.size(); ++len) {
    CHECK_FALSE(for_each_in_batch(std::span<const std::byte>(good).first(len), count_visits));
  }
  CHECK(visits == 0);
}
