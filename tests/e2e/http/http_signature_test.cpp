// End-to-end: signed webhooks into `rill serve`, signatures computed independently with
// `openssl dgst`, sent with curl; an in-process subscriber checks exactly what was published.
#include <doctest/doctest.h>

#include <chrono>

#include "http_util.hpp"
#include "rill/rill.hpp"

namespace rill::e2e::http {

namespace {

constexpr std::string_view key1_hex = "3f1c9a0b7e6d5c4b3a291807f6e5d4c3b2a1908f7e6d5c4b3a29180706f5e4d3";
constexpr std::string_view key2_raw = "gh-rotated-secret";

// "prefix<n>", for file and process names.
std::string numbered(const char* prefix, int n) {
  std::string s = prefix;
  s += std::to_string(n);
  return s;
}

struct Signer {
  const TempDir& dir;
  int n = 0;

  std::string hmac_b64(std::string_view key_hex, const std::string& content) {
    const auto file = dir / numbered("signed", ++n);
    write_file(file, content);
    return shell(dir, numbered("dgst", n),
                 "openssl dgst -sha256 -mac HMAC -macopt hexkey:" + std::string(key_hex) + " -binary " + file.string() +
                     " | base64 -w0");
  }
  std::string hmac_hex(std::string_view key_hex, const std::string& content) {
    const auto file = dir / numbered("signed", ++n);
    write_file(file, content);
    return shell(dir, numbered("dgst", n),
                 "openssl dgst -sha256 -mac HMAC -macopt hexkey:" + std::string(key_hex) + " -r " + file.string() +
                     " | cut -c1-64");
  }
};

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct Case {
  std::string name;
  std::string body;
  std::vector<std::string> headers;
  std::string expect;  // HTTP status from curl
  bool published;
};

}  // namespace

TEST_CASE("signatures: Standard Webhooks and GitHub forms, rotation, tolerance, replays, tampering") {
  TempDir dir;
  const auto key1_b64 = shell(dir, "key1", "printf " + std::string(key1_hex) + " | xxd -r -p | base64 -w0");
  write_file(dir / "secrets",
             "# current and next key during a rotation\nwhsec_" + key1_b64 + "\n" + std::string(key2_raw) + "\n");
  Serve serve(dir, {"--topics", "sig", "--secret-file", (dir / "secrets").string()});
  Node node;
  auto sub = node.subscriber({.endpoints = {tcp_endpoint(serve.publish_port)}, .prefix = "sig"});
  REQUIRE(sub);
  REQUIRE(serve.wait_subscribers("sig", 1, 10s));

  Signer s{dir};
  const auto key2_hex = hex(key2_raw);
  const auto wrong_hex = std::string(64, 'a');
  const auto ts = std::to_string(now_s());
  const auto std_headers = [&](const std::string& id, const std::string& t, const std::string& sig) {
    return std::vector<std::string>{"webhook-id: " + id, "webhook-timestamp: " + t, "webhook-signature: " + sig};
  };
  const auto sign = [&](std::string_view key, const std::string& id, const std::string& t, const std::string& body) {
    return std::string("v1,").append(s.hmac_b64(key, id + "." + t + "." + body));
  };
  const std::string stale = std::to_string(now_s() - 400);
  const std::string future = std::to_string(now_s() + 400);
  std::vector<Case> cases = {
      {"valid, current key", "body-1", std_headers("msg_1", ts, sign(key1_hex, "msg_1", ts, "body-1")), "202", true},
      {"wrong secret", "body-2", std_headers("msg_2", ts, sign(wrong_hex, "msg_2", ts, "body-2")), "401", false},
      {"rotated key (second line of the file)", "body-3",
       std_headers("msg_3", ts, sign(key2_hex, "msg_3", ts, "body-3")), "202", true},
      {"several signatures, one valid", "body-4",
       std_headers("msg_4", ts, sign(wrong_hex, "msg_4", ts, "body-4") + " " + sign(key1_hex, "msg_4", ts, "body-4")),
       "202", true},
      {"stale timestamp", "body-5", std_headers("msg_5", stale, sign(key1_hex, "msg_5", stale, "body-5")), "401",
       false},
      {"future timestamp", "body-6", std_headers("msg_6", future, sign(key1_hex, "msg_6", future, "body-6")), "401",
       false},
      {"replayed id (accepted, not published again)", "body-1",
       std_headers("msg_1", ts, sign(key1_hex, "msg_1", ts, "body-1")), "202", false},
      {"tampered body", "body-7-tampered", std_headers("msg_7", ts, sign(key1_hex, "msg_7", ts, "body-7")), "401",
       false},
      {"signature for another id", "body-8", std_headers("msg_8", ts, sign(key1_hex, "msg_x", ts, "body-8")), "401",
       false},
      {"malformed signature list", "body-9", std_headers("msg_9", ts, "v1,not*base64"), "401", false},
      {"missing signature", "body-10", {}, "401", false},
      {"GitHub form",
       "{\"action\":\"opened\"}",
       {std::string("X-Hub-Signature-256: sha256=").append(s.hmac_hex(key2_hex, "{\"action\":\"opened\"}")),
        "X-GitHub-Event: push"},
       "202",
       true},
      {"GitHub form, whsec key bytes",
       "gh-2",
       {std::string("X-Hub-Signature-256: sha256=").append(s.hmac_hex(key1_hex, "gh-2"))},
       "202",
       true},
      {"GitHub form, wrong key",
       "gh-3",
       {std::string("X-Hub-Signature-256: sha256=").append(s.hmac_hex(wrong_hex, "gh-3"))},
       "401",
       false},
      {"GitHub form, tampered",
       "gh-4x",
       {std::string("X-Hub-Signature-256: sha256=").append(s.hmac_hex(key2_hex, "gh-4"))},
       "401",
       false},
  };
  std::vector<std::string> expected;
  int i = 0;
  for (auto& c : cases) {
    INFO(c.name);
    const auto body = dir / numbered("body", i);
    write_file(body, c.body);
    std::vector<std::string> args = {"/usr/bin/curl",    "-s", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary",
                                     "@" + body.string()};
    for (auto& h : c.headers) {
      args.push_back("-H");
      args.push_back(h);
    }
    args.push_back(serve.url("/topics/sig"));
    CHECK(run(dir, numbered("curl", i++), args) == c.expect);
    if (c.published) expected.push_back(c.body);
  }
  // Exactly the accepted bodies, once each, in order; then silence.
  std::vector<std::string> got;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (got.size() < expected.size() && std::chrono::steady_clock::now() < deadline) {
    sub->wait_poll([&](const MessageView& m) { got.emplace_back(m.payload_text()); }, 64, 50ms);
  }
  sub->wait_poll([&](const MessageView& m) { got.emplace_back(m.payload_text()); }, 64, 300ms);
  CHECK(got == expected);
  CHECK(serve.metric("rill_http_duplicates_total") == 1);
  CHECK(serve.metric("rill_http_auth_failures_total{reason=\"signature does not verify\"}") == 5);
  CHECK(serve.metric("rill_http_auth_failures_total{reason=\"timestamp outside the tolerance\"}") == 2);
  CHECK(serve.metric("rill_http_auth_failures_total{reason=\"missing signature\"}") == 1);
  CHECK(serve.metric("rill_http_auth_failures_total{reason=\"malformed signature headers\"}") == 1);
}

}  // namespace rill::e2e::http
