// End-to-end: `rill serve` as a real process, driven by curl and by raw sockets, with rill
// subscribers (a `rill sub` process, or one in this process) checking what was published.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <map>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>

#include "../streams.hpp"
#include "http_util.hpp"
#include "rill/rill.hpp"
#include "tests/skip.hpp"

namespace rill::e2e::http {

namespace {

std::string curl_post(const TempDir& dir, const std::string& name, const std::string& url,
                      const std::filesystem::path& body, std::vector<std::string> headers = {}) {
  std::vector<std::string> args = {"/usr/bin/curl", "-s", "-o",   "/dev/null",     "-w",
                                   "%{http_code}",  "-X", "POST", "--data-binary", "@" + body.string()};
  for (auto& h : headers) {
    args.push_back("-H");
    args.push_back(std::move(h));
  }
  args.push_back(url);
  return run(dir, name, std::move(args));
}

// Collects what an in-process subscriber receives until `n` messages or the deadline.
struct Received {
  std::string payload;
  std::string content_type;
  std::string webhook_id;
  std::uint64_t seq = 0;
};
std::vector<Received> collect(Subscriber& sub, std::size_t n, std::chrono::milliseconds timeout) {
  std::vector<Received> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    sub.wait_poll(
        [&](const MessageView& m) {
          out.push_back({std::string(m.payload_text()), std::string(m.header("content-type").value_or("")),
                         std::string(m.header("webhook-id").value_or("")), m.sequence()});
        },
        64, std::chrono::milliseconds(50));
  }
  return out;
}

}  // namespace

TEST_CASE("curl POSTs arrive at a rill sub byte for byte, in order, with nothing else") {
  TempDir dir;
  Serve serve(dir, {"--topics", "hooks/in"});
  auto sub = spawn_rill(dir, "sub",
                        {"sub", tcp_endpoint(serve.publish_port), "hooks/", "--count", "3", "--idle-exit-ms", "20000",
                         "--format", "json"});
  REQUIRE(serve.wait_subscribers("hooks/in", 1, 10s));
  std::string binary;
  for (int i = 0; i < 256; ++i) binary += static_cast<char>(i);
  const std::vector<std::string> bodies = {"{\"event\":\"created\",\"id\":1}", binary, std::string(200'000, 'x')};
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    const auto path = dir / ("body" + std::to_string(i));
    write_file(path, bodies[i]);
    CHECK(curl_post(dir, "curl" + std::to_string(i), serve.url("/topics/hooks/in"), path) == "202");
  }
  REQUIRE(sub->wait(20s).ok());
  const auto out = sub->out();
  const auto msgs = parse_json(out);
  REQUIRE(msgs.all.size() == 3);
  CHECK(msgs.bad == 0);
  // rill sub prints text payloads as text and binary ones as base64: compare each form.
  const auto ls = lines(out);
  CHECK(ls[0].find(R"("payload":"{\"event\":\"created\",\"id\":1}")") != std::string_view::npos);
  const auto b64 = shell(dir, "b64", "base64 -w0 " + (dir / "body1").string());
  CHECK(json_str(ls[1], "payload").value_or("") == b64);
  CHECK(json_u64(ls[1], "size").value_or(0) == 256);
  CHECK(json_str(ls[2], "payload").value_or("") == bodies[2]);
  for (std::size_t i = 0; i < 3; ++i) CHECK(msgs.all[i].topic == "hooks/in");
  CHECK(msgs.all[1].seq == msgs.all[0].seq + 1);
  CHECK(msgs.all[2].seq == msgs.all[1].seq + 1);
  const auto stats = parse_stats(out);
  CHECK(stats["gaps"] == 0);
}

TEST_CASE("a rill sub waiting on the publish endpoint gets the first webhook of every new topic") {
  TempDir dir;
  Serve serve(dir, {});  // no topic yet: the endpoint is bound all the same
  auto sub = spawn_rill(dir, "sub",
                        {"sub", tcp_endpoint(serve.publish_port), "new/", "--count", "6", "--idle-exit-ms", "20000",
                         "--format", "json"});
  REQUIRE(wait_until([&] { return serve.metric("rill_endpoint_subscriptions") >= 1; }, 10s));
  const auto post = [&](const std::string& topic, const std::string& body) {
    const auto r = http::raw_exchange(serve.http_port, "POST /topics/" + topic +
                                                           " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                                           "Content-Length: " +
                                                           std::to_string(body.size()) + "\r\n\r\n" + body);
    return r.status;
  };
  // Each topic is created by its first POST, after the subscriber connected.
  for (int round = 0; round < 2; ++round) {
    for (const std::string t : {"new/a", "new/b", "new/c"}) CHECK(post(t, t + "#" + std::to_string(round)) == 202);
  }
  REQUIRE(sub->wait(20s).ok());
  const auto out = sub->out();
  const auto msgs = parse_json(out);
  REQUIRE(msgs.all.size() == 6);
  std::map<std::string, std::vector<std::uint64_t>> seqs;
  std::map<std::string, std::string> publisher;
  for (const auto& m : msgs.all) {
    seqs[m.topic].push_back(m.seq);
    publisher[m.topic] = m.publisher;
  }
  for (const std::string t : {"new/a", "new/b", "new/c"}) CHECK(seqs[t] == std::vector<std::uint64_t>{1, 2});
  CHECK(publisher["new/a"] != publisher["new/b"]);
  const auto stats = parse_stats(out);
  CHECK(stats["gaps"] == 0);
  CHECK(stats["publishers"] == 3);
  CHECK(stats["publisher_restarts"] == 0);
}

TEST_CASE("content-type and webhook headers are carried as envelope headers; keep-alive and pipelining work") {
  TempDir dir;
  Serve serve(dir, {"--topics", "a,b"});
  Node node;
  auto sub = node.subscriber({.endpoints = {tcp_endpoint(serve.publish_port)}, .prefix = "b"});
  REQUIRE(sub);
  REQUIRE(serve.wait_subscribers("b", 1, 10s));
  Conn c(serve.http_port);
  // Two requests in one write: the second must wait for the first's response, then be served.
  const std::string two =
      "POST /topics/b HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nwebhook-id: msg_1\r\n"
      "X-Not-Carried: nope\r\nContent-Length: 7\r\n\r\n{\"n\":1}"
      "POST /topics/b?ignored=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n";
  REQUIRE(c.send(two));
  const auto r1 = c.read_response(5s);
  const auto r2 = c.read_response(5s);
  CHECK(r1.status == 202);
  CHECK(r2.status == 202);
  CHECK(r1.bytes.find("Connection: close") == std::string::npos);
  // Still open: a third request on the same connection.
  REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(c.read_response(5s).status == 200);
  const auto got = collect(*sub, 2, 10s);
  REQUIRE(got.size() == 2);
  CHECK(got[0].payload == "{\"n\":1}");
  CHECK(got[0].content_type == "application/json");
  CHECK(got[0].webhook_id == "msg_1");
  CHECK(got[1].payload == "abcdefg");
  CHECK(got[1].content_type.empty());
}

TEST_CASE("routes: 404 unknown path or undeclared topic, 405 wrong method with Allow, 400 bad topic, /topics map") {
  TempDir dir;
  Serve serve(dir, {"--topics", "only"});
  const auto req = [](std::string_view line) { return std::string(line) + "\r\nHost: x\r\nContent-Length: 0\r\n\r\n"; };
  // These keep the connection open (no body was left unread): read the answer only.
  const auto raw_exchange = [](int port, const std::string& r) { return http::raw_exchange(port, r, 5s, false); };
  CHECK(raw_exchange(serve.http_port, req("POST /elsewhere HTTP/1.1")).status == 404);
  CHECK(raw_exchange(serve.http_port, req("POST /topics/other HTTP/1.1")).status == 404);
  const auto m = raw_exchange(serve.http_port, req("GET /topics/only HTTP/1.1"));
  CHECK(m.status == 405);
  CHECK(m.bytes.find("Allow: POST") != std::string::npos);
  CHECK(raw_exchange(serve.http_port, req("POST /healthz HTTP/1.1")).status == 405);
  CHECK(raw_exchange(serve.http_port, req("POST /topics/a%2fb HTTP/1.1")).status == 400);
  CHECK(raw_exchange(serve.http_port, req("POST /topics/a//b HTTP/1.1")).status == 400);
  const auto listing = get(serve.http_port, "/topics");
  const auto prefix = "{\"only\":{\"endpoint\":\"" + tcp_endpoint(serve.publish_port) + "\",\"publisher\":\"";
  CHECK(listing.starts_with(prefix));
  CHECK(listing.size() == prefix.size() + 16 + 4);  // 16 hex digits, then "}}\n
  CHECK(listing.ends_with("\"}}\n"));
  CHECK(get(serve.http_port, "/healthz") == "ok\n");
  const auto metrics = get(serve.http_port, "/metrics");
  CHECK(metrics.find("rill_http_requests_total{code=\"404\"} 2") != std::string::npos);
  CHECK(metrics.find("rill_http_publish_seconds_bucket{le=\"+Inf\"} 0") != std::string::npos);
}

// Each case: the raw request and the status it must get; the connection must then close.
struct Malformed {
  const char* name;
  std::string request;
  int status;
};

TEST_CASE("smuggling and malformed corpus: each refused with its status, connection closed, nothing published") {
  TempDir dir;
  Serve serve(dir, {"--topics", "t", "--max-body", "1024"});
  const std::string p = "POST /topics/t HTTP/1.1\r\nHost: h\r\n";
  const std::vector<Malformed> cases = {
      {"CL then TE", p + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"TE then CL", p + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400},
      {"duplicate TE", p + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"TE list chunked, identity", p + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400},
      {"TE gzip, chunked", p + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400},
      {"TE identity", p + "Transfer-Encoding: identity\r\n\r\nhello", 400},
      {"TE xchunked", p + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400},
      {"TE space before colon", p + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400},
      {"TE vertical tab",
       p + "Transfer-Encoding: \x0b"
           "chunked\r\n\r\n0\r\n\r\n",
       400},
      {"TE obs-fold", p + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400},
      {"TE in HTTP/1.0", "POST /topics/t HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"two CL differing", p + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
      {"two CL equal", p + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400},
      {"CL list", p + "Content-Length: 5, 5\r\n\r\nhello", 400},
      {"CL negative", p + "Content-Length: -1\r\n\r\n", 400},
      {"CL plus sign", p + "Content-Length: +5\r\n\r\nhello", 400},
      {"CL hex", p + "Content-Length: 0x5\r\n\r\nhello", 400},
      {"CL overflow", p + "Content-Length: 99999999999999999999999\r\n\r\n", 400},
      {"CL inner space", p + "Content-Length: 5 5\r\n\r\nhello", 400},
      {"CL empty", p + "Content-Length: \r\n\r\n", 400},
      {"LF-only request", "POST /topics/t HTTP/1.1\nHost: h\nContent-Length: 0\n\n", 400},
      {"one bare LF", p + "X-A: a\nContent-Length: 0\r\n\r\n", 400},
      {"bare CR", p + "X-A: a\rX-B: b\r\nContent-Length: 0\r\n\r\n", 400},
      {"obs-fold other header", p + "X-A: a\r\n\tb\r\nContent-Length: 0\r\n\r\n", 400},
      {"whitespace before first field", "POST /topics/t HTTP/1.1\r\n Host: h\r\nContent-Length: 0\r\n\r\n", 400},
      {"chunk size overflow", p + "Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n", 400},
      {"chunk size not hex", p + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400},
      {"chunk size negative", p + "Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk bare LF", p + "Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n", 400},
      {"chunk data longer than size", p + "Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk extension control byte", p + "Transfer-Encoding: chunked\r\n\r\n5;\x01\r\nhello\r\n0\r\n\r\n", 400},
      {"no Host in HTTP/1.1", "POST /topics/t HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400},
      {"two Host", p + "Host: h2\r\nContent-Length: 0\r\n\r\n", 400},
      {"NUL in header", p + std::string("X-A: a\0b\r\nContent-Length: 0\r\n\r\n", 31), 400},
      {"space in field name", p + "Bad Name: x\r\nContent-Length: 0\r\n\r\n", 400},
      {"field without colon", p + "NoColon\r\nContent-Length: 0\r\n\r\n", 400},
      {"double space request line", "POST  /topics/t HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 400},
      {"no version", "POST /topics/t\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 400},
      {"garbage version", "POST /topics/t HTTP/1.1x\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 400},
      {"HTTP/2.0 text", "POST /topics/t HTTP/2.0\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 400},
      {"binary junk", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11), 400},
      {"header too large", p + "X-Big: " + std::string(9000, 'a') + "\r\nContent-Length: 0\r\n\r\n", 431},
      {"many small headers",
       p +
           [] {
             std::string h;
             for (int i = 0; i < 1200; ++i) h += "X-" + std::to_string(i) + ": v\r\n";
             return h;
           }() +
           "Content-Length: 0\r\n\r\n",
       431},
      {"body over limit (declared)", p + "Content-Length: 5000\r\n\r\n" + std::string(5000, 'b'), 413},
      {"body over limit (chunked)",
       p + "Transfer-Encoding: chunked\r\n\r\n400\r\n" + std::string(1024, 'c') + "\r\n10\r\n" + std::string(16, 'c') +
           "\r\n0\r\n\r\n",
       413},
  };
  REQUIRE(cases.size() >= 30);
  for (const auto& c : cases) {
    INFO(std::string(c.name));
    const auto r = raw_exchange(serve.http_port, c.request);
    CHECK(r.status == c.status);
    CHECK(r.closed);
    if (r.status != 0) CHECK(r.bytes.find("Connection: close") != std::string::npos);
  }
  // The server is still healthy and published nothing from any of them.
  CHECK(get(serve.http_port, "/healthz") == "ok\n");
  CHECK(serve.metric("rill_http_published_total") == 0);
  // A request just at the limits is accepted.
  const auto ok =
      raw_exchange(serve.http_port, p + "Content-Length: 1024\r\nConnection: close\r\n\r\n" + std::string(1024, 'k'));
  CHECK(ok.status == 202);
  CHECK(serve.metric("rill_http_published_total") == 1);
}

TEST_CASE("slow clients: header timeout answers 408 and closes; Expect: 100-continue gets its interim response") {
  TempDir dir;
  Serve serve(dir, {"--topics", "t", "--header-timeout-ms", "300", "--body-timeout-ms", "300"});
  {
    Conn c(serve.http_port);
    REQUIRE(c.send("POST /topics/t HTTP/1.1\r\nHost: h\r\n"));
    const auto r = c.read_response(5s);
    CHECK(r.status == 408);
    CHECK(c.wait_closed(5s));
  }
  {
    Conn c(serve.http_port);
    REQUIRE(c.send("POST /topics/t HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc"));
    CHECK(c.read_response(5s).status == 408);
    CHECK(c.wait_closed(5s));
  }
  {
    Conn c(serve.http_port);
    REQUIRE(c.send("POST /topics/t HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"));
    // Raw read: the interim response comes first, before we send the body.
    std::string got;
    char buf[256];
    const auto n = ::recv(c.fd(), buf, sizeof buf, 0);
    if (n > 0) got.assign(buf, static_cast<std::size_t>(n));
    CHECK(got == "HTTP/1.1 100 Continue\r\n\r\n");
    REQUIRE(c.send("xyz"));
    CHECK(c.read_response(5s).status == 202);
  }
  CHECK(serve.metric("rill_http_timeouts_total{phase=\"header\"}") == 1);
  CHECK(serve.metric("rill_http_timeouts_total{phase=\"body\"}") == 1);
}

}  // namespace rill::e2e::http

namespace rill::e2e::http {

TEST_CASE("connection limits: past --max-connections a connection is closed at once; idle keep-alive is closed") {
  TempDir dir;
  Serve serve(dir, {"--topics", "t", "--max-connections", "3", "--idle-timeout-ms", "300"});
  // The server accepts in connect order: a, b and c take the three slots, d is one too many.
  Conn a(serve.http_port);
  Conn b(serve.http_port);
  Conn c(serve.http_port);
  Conn d(serve.http_port);
  CHECK(d.wait_closed(5s));
  REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"));
  CHECK(c.read_response(5s).status == 200);
  // Keep-alive: a request, then silence past the idle timeout closes the connection.
  REQUIRE(a.send("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"));
  CHECK(a.read_response(5s).status == 200);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(a.wait_closed(5s));
  CHECK(std::chrono::steady_clock::now() - t0 >= 250ms);
  CHECK(serve.metric("rill_http_connections_refused_total") >= 1);
}

}  // namespace rill::e2e::http

namespace rill::e2e::http {

TEST_CASE("a publish held by a backpressure subscriber past --publish-timeout-ms answers 429 with Retry-After") {
  TempDir dir;
  Serve serve(dir, {"--topics", "bp", "--publish-timeout-ms", "100"});
  // A slow backpressure subscriber: window of 2, half a second per message.
  auto sub = spawn_rill(dir, "slow",
                        {"sub", tcp_endpoint(serve.publish_port), "bp", "--policy", "backpressure:2", "--work-us",
                         "500000", "--format", "text", "--idle-exit-ms", "20000"});
  REQUIRE(serve.wait_subscribers("bp", 1, 10s));
  Conn c(serve.http_port);
  const std::string req = "POST /topics/bp HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi";
  int accepted = 0;
  RawReply refused;
  for (int i = 0; i < 6 && refused.status == 0; ++i) {
    REQUIRE(c.send(req));
    auto r = c.read_response(5s);
    if (r.status == 202) {
      ++accepted;
    } else {
      refused = r;
    }
  }
  CHECK(refused.status == 429);
  CHECK(refused.bytes.find("Retry-After: 1\r\n") != std::string::npos);
  CHECK(accepted >= 2);  // the window let the first ones through
  CHECK(serve.metric("rill_http_publish_drops_total{reason=\"backpressure\"}") == 1);
  CHECK(serve.metric("rill_http_published_total") == accepted);
  // The connection stays usable: 429 is an answer, not a protocol error.
  REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"));
  CHECK(c.read_response(5s).status == 200);
  sub->kill(SIGTERM);
}

}  // namespace rill::e2e::http

namespace rill::e2e::http {

TEST_CASE("serve and delivery usage errors: exit 2 and one 'rill: ' line on stderr") {
  TempDir dir;
  const auto pub = tcp_endpoint(free_port());
  const std::vector<std::vector<std::string>> cases = {
      {"serve"},
      {"serve", "--http", "127.0.0.1"},
      {"serve", "--http", "127.0.0.1:0", "--publish", "http://127.0.0.1:1/x"},
      {"serve", "--http", "127.0.0.1:0", "--publish", pub, "--tls-cert", "c.pem"},
      {"serve", "--http", "127.0.0.1:0", "--publish", pub, "--secret-file", "/nonexistent"},
      {"serve", "--http", "127.0.0.1:0", "--publish", pub, "--topics", "a%b"},
      {"serve", "--http", "127.0.0.1:0", "--publish", pub, "--max-body", "lots"},
      {"serve", "--http", "not-an-ip:0", "--publish", pub},
      {"sub", pub, "http://127.0.0.1:1/x", "t", "--retry-schedule", "5x"},
      {"sub", pub, "http://127.0.0.1:1/x", "http://127.0.0.1:2/y", "t"},
      {"sub", "http://127.0.0.1:1/x", "t"},
      {"sub", pub, "http://127.0.0.1:1/x", "t", "--window", "0"},
  };
  int i = 0;
  for (const auto& args : cases) {
    auto p = spawn_rill(dir, "usage" + std::to_string(i++), args);
    const auto e = p->wait(10s);
    const auto err = p->err();
    INFO(p->command_line());
    INFO("stderr: " << err);
    CHECK(e.describe() == "exit 2");
    CHECK(err.starts_with("rill: "));
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  }
}

}  // namespace rill::e2e::http

RILL_DOCTEST_MAIN_WITH_SKIPS
