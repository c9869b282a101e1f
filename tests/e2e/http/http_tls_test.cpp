// End-to-end: `rill serve --tls-cert --tls-key` against curl and openssl with a certificate
// the test makes with `openssl req`. HTTPS answers and publishes; plain HTTP, TLS 1.1, a
// weak cipher and a stalled handshake are refused or timed out without holding others up;
// SIGHUP serves a new certificate.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <csignal>

#include "../checks.hpp"
#include "http_util.hpp"

namespace rill::e2e::http {

namespace {

// A self-signed certificate for 127.0.0.1 (it is its own CA): DIR/NAME.crt, DIR/NAME.pem.
void make_cert(const TempDir& dir, const std::string& name) {
  const auto crt = (dir / (name + ".crt")).string();
  const auto key = (dir / (name + ".pem")).string();
  run(dir, "openssl-" + name,
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=" + name,
       "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"});
}

// curl's exit code and output for `args` (after the common ones).
struct Curl {
  int code = -1;
  std::string out;
  std::string err;
};
Curl curl(const TempDir& dir, const std::string& name, std::vector<std::string> args) {
  std::vector<std::string> all = {"/usr/bin/curl", "-sS", "--max-time", "10"};
  all.insert(all.end(), args.begin(), args.end());
  Process p(all, dir.path(), name);
  const auto e = p.wait(20s);
  return {e.code, p.out(), p.err()};
}

std::string https(const Serve& s, std::string_view path) {
  return "https://127.0.0.1:" + std::to_string(s.http_port) + std::string(path);
}

// A /metrics sample read over HTTPS (-1 when absent).
double tls_metric(const TempDir& dir, const Serve& s, const std::string& ca, std::string_view sample) {
  const auto r = curl(dir, "metrics", {"--cacert", ca, https(s, "/metrics")});
  for (const auto line : lines(r.out)) {
    if (line.starts_with(sample) && line.size() > sample.size() && line[sample.size()] == ' ') {
      return std::stod(std::string(line.substr(sample.size() + 1)));
    }
  }
  return -1;
}

}  // namespace

TEST_CASE("tls ingress: curl with the test CA gets 202 over TLS 1.2 and 1.3, and the message is published") {
  TempDir dir;
  make_cert(dir, "a");
  const auto ca = (dir / "a.crt").string();
  Serve serve(dir, {"--topics", "t", "--tls-cert", ca, "--tls-key", (dir / "a.pem").string()});
  CHECK(serve.proc->err().find("listening on https://") != std::string::npos);
  auto sub = spawn_rill(dir, "sub", {"sub", tcp_endpoint(serve.publish_port), "t", "--count", "2", "--format", "text"});
  REQUIRE(wait_until([&] { return tls_metric(dir, serve, ca, "rill_topic_subscribers{topic=\"t\"}") >= 1; }, 10s));

  const auto v13 = curl(dir, "post13", {"--tlsv1.3", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code} %{ssl_verify_result}",
                                        "--data-binary", "over-tls-13", https(serve, "/topics/t")});
  CHECK(v13.code == 0);
  CHECK(v13.out == "202 0");
  const auto v12 = curl(dir, "post12", {"--tlsv1.2", "--tls-max", "1.2", "--cacert", ca, "-o", "/dev/null", "-w",
                                        "%{http_code}", "--data-binary", "over-tls-12", https(serve, "/topics/t")});
  CHECK(v12.code == 0);
  CHECK(v12.out == "202");
  finish_sub(*sub);
  CHECK(sub->out().find("t 1 over-tls-13") != std::string::npos);
  CHECK(sub->out().find("t 2 over-tls-12") != std::string::npos);
  // Without the CA, curl refuses the certificate: it is really this one that is served.
  CHECK(curl(dir, "noca", {https(serve, "/healthz")}).code == 60);
  CHECK(tls_metric(dir, serve, ca, "rill_http_tls_handshakes_total{result=\"ok\"}") >= 3);
}

TEST_CASE("tls ingress: plain HTTP, TLS 1.1, a weak cipher and a stalled handshake are refused; others are served") {
  TempDir dir;
  make_cert(dir, "a");
  const auto ca = (dir / "a.crt").string();
  Serve serve(dir, {"--topics", "t", "--tls-cert", ca, "--tls-key", (dir / "a.pem").string(), "--header-timeout-ms",
                    "5000"});
  // A handshake that never starts (and one that stops half way) holds a connection only
  // until the header timeout.
  Conn silent(serve.http_port);
  Conn half(serve.http_port);
  CHECK(half.send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)));  // a ClientHello's first bytes
  const auto t0 = std::chrono::steady_clock::now();

  // Plain HTTP on the TLS port: closed, no HTTP answer.
  const auto plain = raw_exchange(serve.http_port, "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n", 5s);
  CHECK(plain.status == 0);
  CHECK(plain.closed);
  CHECK(plain.bytes.find("HTTP/1.1") == std::string::npos);
  // TLS 1.1 and a TLS 1.2 cipher without forward secrecy: handshake failures (curl 35).
  const auto old = curl(dir, "tls11", {"--tlsv1.1", "--tls-max", "1.1", "--cacert", ca, https(serve, "/healthz")});
  CHECK(old.code == 35);
  const auto weak = curl(dir, "weak", {"--tls-max", "1.2", "--ciphers", "AES128-SHA", "--cacert", ca,
                                       https(serve, "/healthz")});
  CHECK(weak.code == 35);
  // Meanwhile a good client is served at once.
  const auto good = curl(dir, "good", {"--cacert", ca, https(serve, "/healthz")});
  CHECK(good.code == 0);
  CHECK(good.out == "ok\n");
  // ... while the stalled handshakes are still held (they did not make it wait).
  const bool served_first = std::chrono::steady_clock::now() - t0 < 4500ms;
  CHECK(served_first);
  if (served_first) CHECK_FALSE(silent.wait_closed(0ms));

  CHECK(silent.wait_closed(15s));
  CHECK(half.wait_closed(15s));
  CHECK(std::chrono::steady_clock::now() - t0 >= 4900ms);
  CHECK(tls_metric(dir, serve, ca, "rill_http_tls_handshakes_total{result=\"failed\"}") >= 3);
  CHECK(tls_metric(dir, serve, ca, "rill_http_timeouts_total{phase=\"header\"}") >= 2);
}

TEST_CASE("tls ingress: SIGHUP serves the new certificate; a bad pair keeps the old one") {
  TempDir dir;
  make_cert(dir, "old");
  make_cert(dir, "new");
  const auto crt = (dir / "served.crt").string();
  const auto key = (dir / "served.pem").string();
  write_file(crt, read_file(dir / "old.crt"));
  write_file(key, read_file(dir / "old.pem"));
  ::chmod(key.c_str(), 0600);
  Serve serve(dir, {"--topics", "t", "--tls-cert", crt, "--tls-key", key});
  const auto old_ca = (dir / "old.crt").string();
  const auto new_ca = (dir / "new.crt").string();
  CHECK(curl(dir, "before-old", {"--cacert", old_ca, https(serve, "/healthz")}).code == 0);
  CHECK(curl(dir, "before-new", {"--cacert", new_ca, https(serve, "/healthz")}).code == 60);

  // A key that does not match the certificate: the reload is refused, the old pair serves on.
  write_file(crt, read_file(dir / "new.crt"));
  ::kill(serve.proc->pid(), SIGHUP);
  REQUIRE(wait_until([&] { return serve.proc->err().find("reload failed") != std::string::npos; }, 10s));
  CHECK(curl(dir, "mismatch-old", {"--cacert", old_ca, https(serve, "/healthz")}).code == 0);

  write_file(key, read_file(dir / "new.pem"));
  ::kill(serve.proc->pid(), SIGHUP);
  REQUIRE(wait_until([&] { return serve.proc->err().find("reloaded") != std::string::npos; }, 10s));
  const auto now_new = curl(dir, "after-new", {"--cacert", new_ca, "-X", "POST", "--data-binary", "x", "-o", "/dev/null",
                                               "-w", "%{http_code}", https(serve, "/topics/t")});
  CHECK(now_new.code == 0);
  CHECK(now_new.out == "202");
  CHECK(curl(dir, "after-old", {"--cacert", old_ca, https(serve, "/healthz")}).code == 60);
}

TEST_CASE("tls ingress: --tls-cert without --tls-key, and a missing file, are usage errors") {
  TempDir dir;
  make_cert(dir, "a");
  auto lone = spawn_rill(dir, "lone", {"serve", "--http", "127.0.0.1:0", "--publish", tcp_endpoint(free_port()),
                                       "--tls-cert", (dir / "a.crt").string()});
  CHECK(lone->wait(10s).code == 2);
  CHECK(lone->err().find("go together") != std::string::npos);
  auto missing = spawn_rill(dir, "missing", {"serve", "--http", "127.0.0.1:0", "--publish", tcp_endpoint(free_port()),
                                             "--tls-cert", (dir / "nope.crt").string(), "--tls-key",
                                             (dir / "a.pem").string()});
  CHECK(missing->wait(10s).code == 2);
  CHECK(missing->err().find("nope.crt") != std::string::npos);
}

}  // namespace rill::e2e::http
