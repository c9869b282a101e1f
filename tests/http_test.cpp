// Units of the http transport: the request reader fed in pieces, signatures (with the
// Standard Webhooks reference vector), secrets, the replay cache and the retry schedule.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <random>

#include "connectors/http/request_reader.hpp"
#include "connectors/http/retry_schedule.hpp"
#include "connectors/http/signature.hpp"
#include "test_seed.hpp"

namespace rill::http {

namespace {

struct Parsed {
  int error = 0;
  std::string method;
  std::string target;
  std::string body;
  std::size_t consumed = 0;
};

// Feeds `bytes` as the server does: unconsumed bytes stay and more are appended, split at `cuts`.
Parsed parse_split(std::string_view bytes, const std::vector<std::size_t>& cuts, RequestLimits limits = {}) {
  RequestReader r(limits);
  std::string buf;
  std::size_t offered = 0;
  Parsed p;
  auto feed_all = [&] {
    for (;;) {
      const auto n = r.feed(std::span<const char>(buf.data(), buf.size()));
      buf.erase(0, n);
      p.consumed += n;
      if (n == 0 || r.error() || r.done()) break;
    }
  };
  for (const auto cut : cuts) {
    buf.append(bytes.substr(offered, cut - offered));
    offered = cut;
    feed_all();
    if (r.error() || r.done()) break;
  }
  if (!r.error() && !r.done()) {
    buf.append(bytes.substr(offered));
    feed_all();
  }
  if (r.error()) p.error = r.error()->status;
  if (r.done()) {
    p.method = std::string(r.request().method_string());
    p.target = std::string(r.request().target());
    p.body = r.request().body();
  }
  return p;
}

}  // namespace

TEST_CASE("a request split at every byte position parses the same (content-length and chunked)") {
  const std::string cl = "POST /topics/a HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world";
  const std::string chunked =
      "POST /topics/b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n "
      "world\r\n0\r\n\r\n";
  for (const auto* req : {&cl, &chunked}) {
    for (std::size_t cut = 1; cut < req->size(); ++cut) {
      const auto p = parse_split(*req, {cut});
      INFO("cut at " << cut);
      REQUIRE(p.error == 0);
      CHECK(p.method == "POST");
      CHECK(p.body == "hello world");
      CHECK(p.consumed == req->size());
    }
  }
  // Byte by byte.
  std::vector<std::size_t> every;
  for (std::size_t i = 1; i < chunked.size(); ++i) every.push_back(i);
  CHECK(parse_split(chunked, every).body == "hello world");
}

TEST_CASE("the reader stops at the end of one request: a pipelined second one stays unconsumed") {
  const std::string one = "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n";
  const auto p = parse_split(one + one, {});
  CHECK(p.error == 0);
  CHECK(p.consumed == one.size());
}

TEST_CASE("limits and framing errors carry the status to answer") {
  RequestLimits small{.header_bytes = 256, .body_bytes = 8};
  const std::string big_header = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(300, 'a') + "\r\n\r\n";
  CHECK(parse_split(big_header, {}, small).error == 431);
  CHECK(parse_split(big_header, {10, 100, 200}, small).error == 431);  // noticed before the end arrives
  CHECK(parse_split("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n123456789", {}, small).error == 413);
  CHECK(parse_split("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n123456789\r\n0\r\n\r\n", {},
                    small)
            .error == 413);
  CHECK(parse_split("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", {}).error == 400);  // obs-fold
  CHECK(parse_split("GET / HTTP/1.1\nHost: h\n\n", {}).error == 400);                      // bare LF
  CHECK(parse_split("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", {}).error == 400);     // bare CR
  CHECK(parse_split("GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n", {}).error == 400);     // two hosts
  CHECK(parse_split("GET / HTTP/1.1\r\n\r\n", {}).error == 400);                           // no host
  CHECK(parse_split("GET / HTTP/1.0\r\n\r\n", {}).error == 0);                             // 1.0 needs none
  CHECK(parse_split("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n", {}).error == 400);
  // A bare CR is judged only once the byte after it is here.
  CHECK(parse_split("GET / HTTP/1.1\r\nHost: h\r\n\r\n", {15, 16, 17}).error == 0);
}

TEST_CASE("Standard Webhooks reference vector verifies; one changed byte does not") {
  auto secrets = parse_secrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n");
  REQUIRE(secrets);
  const std::string body = R"({"test": 2432232314})";
  const auto at = std::chrono::system_clock::time_point(std::chrono::seconds(1614265330));
  SignedRequest req{.webhook_id = "msg_p5jXN8AQM9LWM0D4loKWxJek",
                    .webhook_timestamp = "1614265330",
                    .webhook_signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                    .hub_signature_256 = {},
                    .body = body};
  CHECK(verify(req, *secrets, at, std::chrono::seconds(300)) == VerifyResult::ok);
  CHECK(sign_standard(*secrets, req.webhook_id, 1614265330, body) == req.webhook_signature);
  CHECK(verify(req, *secrets, at + std::chrono::seconds(301), std::chrono::seconds(300)) == VerifyResult::stale);
  CHECK(verify(req, *secrets, at - std::chrono::seconds(301), std::chrono::seconds(300)) == VerifyResult::stale);
  const std::string tampered = R"({"test": 2432232315})";
  req.body = tampered;
  CHECK(verify(req, *secrets, at, std::chrono::seconds(300)) == VerifyResult::bad_signature);
  req.body = body;
  req.webhook_signature = "v1a,abc v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";  // other schemes are skipped
  CHECK(verify(req, *secrets, at, std::chrono::seconds(300)) == VerifyResult::ok);
  req.webhook_signature = "v1,g0hM9SsE";
  CHECK(verify(req, *secrets, at, std::chrono::seconds(300)) == VerifyResult::malformed);
  req.webhook_signature = {};
  CHECK(verify(req, *secrets, at, std::chrono::seconds(300)) == VerifyResult::missing);
}

TEST_CASE("signature header parsers") {
  std::vector<Digest> d;
  const std::string sig = "v1," + base64_encode(Digest{});
  CHECK(parse_standard_signatures(sig + "  " + sig, d));
  CHECK(d.size() == 2);
  CHECK_FALSE(parse_standard_signatures("", d));
  CHECK_FALSE(parse_standard_signatures("v1", d));
  CHECK_FALSE(parse_standard_signatures(",abc", d));
  CHECK_FALSE(parse_standard_signatures("v1,AAAA", d));  // not 32 bytes
  Digest g{};
  CHECK(parse_github_signature("sha256=" + std::string(64, 'f'), g));
  CHECK(g[0] == 0xff);
  CHECK_FALSE(parse_github_signature("sha256=" + std::string(63, 'f'), g));
  CHECK_FALSE(parse_github_signature("sha1=" + std::string(64, 'f'), g));
  CHECK_FALSE(parse_github_signature("sha256=" + std::string(63, 'f') + "g", g));
}

TEST_CASE("base64 round trip and strictness") {
  std::vector<unsigned char> out;
  for (std::size_t n = 0; n < 40; ++n) {
    std::vector<unsigned char> in(n);
    for (std::size_t i = 0; i < n; ++i) in[i] = static_cast<unsigned char>(i * 37 + 11);
    REQUIRE(base64_decode(base64_encode(in), out));
    CHECK(out == in);
  }
  CHECK_FALSE(base64_decode("abc", out));
  CHECK_FALSE(base64_decode("a=bc", out));
  CHECK_FALSE(base64_decode("ab=c", out));
  CHECK_FALSE(base64_decode("ab!c", out));
  CHECK(base64_decode("AA==", out));
  CHECK_FALSE(base64_decode("AB==", out));  // non-canonical: dropped bits set
  CHECK(base64_decode("AAA=", out));
  CHECK_FALSE(base64_decode("AAB=", out));
}

TEST_CASE("secret files: whsec_ keys decode, raw lines are bytes, comments and CRs are ignored") {
  auto s = parse_secrets("# rotation\r\nwhsec_AAEC\r\n\r\nplain secret\n");
  REQUIRE(s);
  REQUIRE(s->size() == 2);
  CHECK((*s)[0].key == std::vector<unsigned char>{0, 1, 2});
  CHECK(std::string((*s)[1].key.begin(), (*s)[1].key.end()) == "plain secret");
  CHECK(parse_secrets("whsec_!!!!\n").error().code == Errc::invalid_argument);
  CHECK(parse_secrets("# nothing\n").error().code == Errc::invalid_argument);
}

TEST_CASE("replay cache: remembers until expiry, bounded by capacity (oldest forgotten first)") {
  ReplayCache c(3);
  c.remember("a", 100);
  c.remember("b", 101);
  CHECK(c.seen("a", 50));
  CHECK_FALSE(c.seen("x", 50));
  CHECK_FALSE(c.seen("a", 100));  // expired
  CHECK(c.seen("b", 100));
  c.remember("c", 200);
  c.remember("d", 200);
  c.remember("e", 200);  // over capacity: b is forgotten early
  CHECK(c.evictions() == 1);
  CHECK(c.size() == 3);
  CHECK_FALSE(c.seen("b", 100));
  CHECK(c.seen("e", 100));
}

TEST_CASE("retry schedule: parse, default, jitter bounds") {
  auto s = RetrySchedule::parse("0,250ms,5s,2m,1h");
  REQUIRE(s);
  using namespace std::chrono;
  CHECK(s->delays == std::vector<milliseconds>{0ms, 250ms, 5s, 2min, 1h});
  CHECK(RetrySchedule::standard().delays.size() == 8);
  CHECK_FALSE(RetrySchedule::parse(""));
  CHECK_FALSE(RetrySchedule::parse("5x"));
  CHECK_FALSE(RetrySchedule::parse("1,,2"));
  std::mt19937_64 rng(rilltest::test_seed());
  for (int i = 0; i < 1000; ++i) {
    const auto d = s->delay_before(3, rng);
    CHECK(d >= 4000ms);
    CHECK(d <= 6000ms);
  }
  CHECK(s->delay_before(1, rng) == 0ms);
}

}  // namespace rill::http
