// The jetstream endpoint parser and the topic <-> subject mapping (no server needed).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "transport/jetstream/js_options.hpp"

using namespace rill;
using namespace rill::detail::js;

namespace {

Result<JsOptions> parse(const std::string& text) {
  auto ep = Endpoint::parse(text);
  if (!ep) return std::unexpected(ep.error());
  return parse_options(*ep);
}

std::string error_of(const std::string& text) {
  auto o = parse(text);
  REQUIRE_FALSE(o.has_value());
  CHECK(o.error().code == Errc::invalid_argument);
  return o.error().detail;
}

}  // namespace

TEST_CASE("a full endpoint gives every server, the stream and each option") {
  auto o = parse(
      "jetstream://127.0.0.1:4222,10.0.0.2:4223,nats.local:4224/TICKS?replicas=3&storage=memory"
      "&max_bytes=1048576&window=64&ack_wait_ms=2000&reorder_ms=0");
  REQUIRE(o.has_value());
  CHECK(o->servers ==
        std::vector<std::string>{"nats://127.0.0.1:4222", "nats://10.0.0.2:4223", "nats://nats.local:4224"});
  CHECK(o->stream == "TICKS");
  CHECK(o->replicas == 3);
  CHECK(o->memory);
  CHECK(o->max_bytes == 1048576);
  CHECK(o->window == 64);
  CHECK(o->ack_wait_ms == 2000);
  CHECK(o->reorder_ms == 0);
}

TEST_CASE("TLS options: any tls_* turns TLS on; tls_cert and tls_key go together") {
  auto o = parse("jetstream://h:4222/S?tls_ca=/etc/ca.pem&tls_cert=/c.pem&tls_key=/k.pem");
  REQUIRE(o.has_value());
  CHECK(o->tls);
  CHECK(o->tls_ca == "/etc/ca.pem");
  CHECK(o->tls_cert == "/c.pem");
  CHECK(o->tls_key == "/k.pem");
  auto plain = parse("jetstream://h:4222/S");
  REQUIRE(plain.has_value());
  CHECK_FALSE(plain->tls);
  auto system_ca = parse("jetstream://h:4222/S?tls=1");
  REQUIRE(system_ca.has_value());
  CHECK(system_ca->tls);
  CHECK(system_ca->tls_ca.empty());
  CHECK_FALSE(parse("jetstream://h:4222/S?tls_cert=/c.pem").has_value());
  CHECK_FALSE(parse("jetstream://h:4222/S?tls_key=/k.pem").has_value());
  CHECK_FALSE(parse("jetstream://h:4222/S?tls=yes").has_value());
  CHECK_FALSE(parse("jetstream://h:4222/S?tls_ca=").has_value());
}

TEST_CASE("defaults: one replica, file storage, no byte limit") {
  auto o = parse("jetstream://127.0.0.1:4222/S");
  REQUIRE(o.has_value());
  CHECK(o->replicas == 1);
  CHECK_FALSE(o->memory);
  CHECK(o->max_bytes == -1);
  CHECK(o->subject_prefix() == "rill.S");
}

TEST_CASE("bad endpoints are refused with the part that is wrong") {
  CHECK(error_of("jetstream://127.0.0.1:4222").find("needs servers and a stream") != std::string::npos);
  CHECK(error_of("jetstream:///S").find("needs servers and a stream") != std::string::npos);
  CHECK(error_of("jetstream://127.0.0.1/S").find("'127.0.0.1' is not HOST:PORT") != std::string::npos);
  CHECK(error_of("jetstream://127.0.0.1:0/S").find("is not HOST:PORT") != std::string::npos);
  CHECK(error_of("jetstream://127.0.0.1:4222,/S").find("ends with a ','") != std::string::npos);
  CHECK(error_of("jetstream://127.0.0.1:4222/a.b").find("[A-Za-z0-9_-]") != std::string::npos);
  CHECK(error_of("jetstream://127.0.0.1:4222/S?replicas=0").find("replicas must be 1..5") != std::string::npos);
  CHECK(error_of("jetstream://127.0.0.1:4222/S?storage=disk").find("storage must be file or memory") !=
        std::string::npos);
  CHECK(error_of("jetstream://127.0.0.1:4222/S?max_bytes=-5").find("max_bytes") != std::string::npos);
  CHECK(error_of("jetstream://127.0.0.1:4222/S?replicas").find("needs =VALUE") != std::string::npos);
  CHECK(error_of("jetstream://127.0.0.1:4222/S?colour=red").find("unknown option 'colour'") != std::string::npos);
}

TEST_CASE("topics become subjects under rill.<STREAM> and come back unchanged") {
  JsOptions o;
  o.stream = "S";
  auto s = topic_subject(o, "md/quotes/eu");
  REQUIRE(s.has_value());
  CHECK(*s == "rill.S.md.quotes.eu");
  CHECK(subject_topic(o, *s) == "md/quotes/eu");
  CHECK(subject_topic(o, "other.md.quotes") == "");
  for (const char* bad : {"md/a.b", "md/*", "md/>", "md//x", "/md", "md/", "", "a b"}) {
    INFO(bad);
    auto r = topic_subject(o, bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == Errc::invalid_argument);
  }
}

TEST_CASE("a prefix subscription filters on its whole segments") {
  JsOptions o;
  o.stream = "S";
  CHECK(prefix_filter(o, "") == "rill.S.>");
  CHECK(prefix_filter(o, "md") == "rill.S.>");
  CHECK(prefix_filter(o, "md/") == "rill.S.md.>");
  CHECK(prefix_filter(o, "md/quo") == "rill.S.md.>");
  CHECK(prefix_filter(o, "md/quotes/") == "rill.S.md.quotes.>");
  CHECK(prefix_filter(o, "md/*/") == "rill.S.>");  // not a subject token: the core filters
}

TEST_CASE("Nats-Msg-Id carries the publisher id in hex and the sequence") {
  CHECK(msg_id(0xdeadbeefULL, 42) == "00000000deadbeef-42");
  std::uint64_t pub = 0;
  std::uint64_t seq = 0;
  REQUIRE(parse_msg_id("00000000deadbeef-42", pub, seq));
  CHECK(pub == 0xdeadbeefULL);
  CHECK(seq == 42);
  CHECK_FALSE(parse_msg_id("deadbeef-42", pub, seq));
  CHECK_FALSE(parse_msg_id("00000000deadbeef-0", pub, seq));
  CHECK_FALSE(parse_msg_id("00000000deadbeef-", pub, seq));
  CHECK_FALSE(parse_msg_id("00000000deadbeef-4x", pub, seq));
  CHECK_FALSE(parse_msg_id("0000000zdeadbeef-4", pub, seq));
}
