// TCP control frames: every encoder round-trips; every malformed shape is refused.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <array>

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
