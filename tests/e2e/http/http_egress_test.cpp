// End-to-end: webhook delivery (`rill sub ENDPOINT URL PREFIX`) from a `rill pub` process to
// a scripted receiver in this process (plain sockets): retries and back-off, statuses that
// are not retried, abort, timeouts, the dead-letter log, signatures, and backpressure.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <csignal>
#include <map>
#include <mutex>
#include <thread>

#include "../process.hpp"
#include "http_util.hpp"
#include "receiver.hpp"

namespace rill::e2e::http {

namespace {

std::uint64_t seq_of(const Hit& h) {
  return std::stoull(h.headers.at("rill-sequence"));
}

std::vector<Hit> hits_for(const std::vector<Hit>& all, std::uint64_t seq) {
  std::vector<Hit> out;
  for (const auto& h : all) {
    if (seq_of(h) == seq) out.push_back(h);
  }
  return out;
}

double ms_between(const Hit& a, const Hit& b) {
  return std::chrono::duration<double, std::milli>(b.at - a.at).count();
}

}  // namespace

TEST_CASE("delivery retries on the (time-scaled) schedule until 2xx; signed; same webhook-id each attempt") {
  TempDir dir;
  const std::string key_hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
  write_file(dir / "secret", "whsec_" + shell(dir, "k", "printf " + key_hex + " | xxd -r -p | base64 -w0") + "\n");
  std::mutex mu;
  std::map<std::uint64_t, int> seen;
  Receiver rx([&](const Hit& h) {
    std::lock_guard lock(mu);
    return ++seen[seq_of(h)] <= 2 ? Reply{.status = 503} : Reply{.status = 204};
  });
  const auto ep = tcp_endpoint(free_port());
  auto sub = spawn_rill(
      dir, "deliver",
      {"sub", ep, rx.url(), "orders", "--count", "3", "--retry-schedule", "0,300ms,600ms,5s", "--retry-jitter", "0",
       "--secret-file", (dir / "secret").string(), "--dead-letter", (dir / "dlq.jsonl").string()});
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "orders/new", "--count", "3", "--size", "40", "--wait-subs", "1"});
  REQUIRE(pub->wait(30s).ok());
  REQUIRE(sub->wait(30s).ok());
  const auto stats = parse_stats(sub->out());
  CHECK(stats["delivered"] == 3);
  CHECK(stats["attempts"] == 9);
  CHECK(stats["retries"] == 6);
  CHECK(stats["dead_lettered"] == 0);
  CHECK(read_file(dir / "dlq.jsonl").empty());
  const auto all = rx.hits();
  for (std::uint64_t seq = 1; seq <= 3; ++seq) {
    INFO("seq " << seq);
    const auto h = hits_for(all, seq);
    REQUIRE(h.size() == 3);
    CHECK(ms_between(h[0], h[1]) >= 290);  // 300 ms schedule step, no jitter
    CHECK(ms_between(h[0], h[1]) < 3000);
    CHECK(ms_between(h[1], h[2]) >= 590);
    CHECK(h[0].headers.at("webhook-id") == h[2].headers.at("webhook-id"));
    CHECK(h[2].headers.at("rill-attempt") == "3");
    CHECK(h[0].headers.at("rill-topic") == "orders/new");
    CHECK(h[0].body.starts_with("rill " + std::to_string(seq)));
    CHECK(h[0].body.size() == 40);
    // Independent check of the Standard Webhooks signature of the last attempt.
    const auto& last = h[2];
    const auto content = last.headers.at("webhook-id") + "." + last.headers.at("webhook-timestamp") + "." + last.body;
    write_file(dir / "content", content);
    const auto expect = shell(dir, "dgst",
                              "openssl dgst -sha256 -mac HMAC -macopt hexkey:" + key_hex + " -binary " +
                                  (dir / "content").string() + " | base64 -w0");
    CHECK(last.headers.at("webhook-signature") == "v1," + expect);
  }
}

TEST_CASE("410, 400, 404 and webhook-delivery: abort-message are not retried and go to the dead-letter log") {
  TempDir dir;
  Receiver rx([](const Hit& h) {
    switch (seq_of(h)) {
      case 1:
        return Reply{.status = 410};
      case 2:
        return Reply{.status = 500, .extra_headers = "webhook-delivery: abort-message\r\n"};
      case 3:
        return Reply{.status = 400};
      case 4:
        return Reply{.status = 404};
      default:
        return Reply{.status = 200};
    }
  });
  const auto ep = tcp_endpoint(free_port());
  auto sub = spawn_rill(dir, "deliver",
                        {"sub", ep, rx.url(), "t", "--count", "5", "--retry-schedule", "0,50ms,50ms", "--dead-letter",
                         (dir / "dlq.jsonl").string()});
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "t", "--count", "5", "--wait-subs", "1"});
  REQUIRE(pub->wait(30s).ok());
  REQUIRE(sub->wait(30s).ok());
  const auto stats = parse_stats(sub->out());
  CHECK(stats["delivered"] == 1);
  CHECK(stats["attempts"] == 5);
  CHECK(stats["dead_lettered"] == 4);
  const auto dlq = read_file(dir / "dlq.jsonl");
  const auto ls = lines(dlq);
  REQUIRE(ls.size() == 4);
  std::map<std::uint64_t, std::string> reasons;
  for (const auto l : ls) {
    const auto seq = json_u64(l, "seq");
    REQUIRE(seq);
    reasons[*seq] = std::string(json_str(l, "reason").value_or(""));
    CHECK(json_u64(l, "attempts") == 1);
    CHECK(json_str(l, "topic") == "t");
    CHECK(json_str(l, "payload").value_or("").starts_with("rill " + std::to_string(*seq)));
  }
  CHECK(reasons[1] == "receiver answered 410 (not retried)");
  CHECK(reasons[2] == "receiver asked to abort (webhook-delivery: abort-message)");
  CHECK(reasons[3] == "receiver answered 400 (not retried)");
  CHECK(reasons[4] == "receiver answered 404 (not retried)");
}

TEST_CASE("a receiver that never answers: each attempt times out, then the message is dead-lettered") {
  TempDir dir;
  Receiver rx([](const Hit&) { return Reply{.hang = true}; });
  const auto ep = tcp_endpoint(free_port());
  auto sub = spawn_rill(dir, "deliver",
                        {"sub", ep, rx.url(), "t", "--count", "2", "--retry-schedule", "0,100ms,100ms",
                         "--deliver-timeout-ms", "300", "--dead-letter", (dir / "dlq.jsonl").string()});
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "t", "--count", "2", "--wait-subs", "1"});
  REQUIRE(pub->wait(30s).ok());
  REQUIRE(sub->wait(30s).ok());
  const auto stats = parse_stats(sub->out());
  CHECK(stats["delivered"] == 0);
  CHECK(stats["attempts"] == 6);
  CHECK(stats["dead_lettered"] == 2);
  const auto dlq = read_file(dir / "dlq.jsonl");
  const auto ls = lines(dlq);
  REQUIRE(ls.size() == 2);
  for (const auto l : ls) {
    CHECK(json_u64(l, "attempts") == 3);
    CHECK(json_str(l, "reason").value_or("").starts_with("gave up after 3 attempts: "));
    CHECK(l.find("imed out") != std::string_view::npos);
  }
  CHECK(hits_for(rx.hits(), 1).size() == 3);
}

TEST_CASE("the delivery window carries backpressure: a slow receiver slows a backpressure publisher, nothing lost") {
  TempDir dir;
  Receiver rx([](const Hit&) { return Reply{.status = 200, .delay = std::chrono::milliseconds(50)}; });
  const auto ep = tcp_endpoint(free_port());
  auto sub = spawn_rill(dir, "deliver",
                        {"sub", ep, rx.url(), "t", "--count", "30", "--window", "2", "--policy", "backpressure:4"});
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "t", "--count", "30", "--wait-subs", "1", "--timeout-ms", "5000"});
  REQUIRE(pub->wait(60s).ok());
  REQUIRE(sub->wait(60s).ok());
  const auto ps = parse_stats(pub->err());
  const auto ss = parse_stats(sub->out());
  CHECK(ps["sent"] == 30);
  CHECK(ps["timeouts"] == 0);
  // 30 messages at 2 per 50 ms take >= 750 ms; the publisher could only run ahead by the
  // subscription window (4) plus the delivery window (2), so it waited most of that time.
  CHECK(ps["blocked_ns"] >= 400'000'000);
  CHECK(ss["delivered"] == 30);
  CHECK(ss["gaps"] == 0);
  CHECK(rx.max_concurrent() <= 2);
  std::vector<std::uint64_t> seqs;
  for (const auto& h : rx.hits()) seqs.push_back(seq_of(h));
  std::sort(seqs.begin(), seqs.end());
  CHECK(seqs.size() == 30);
  CHECK(std::adjacent_find(seqs.begin(), seqs.end()) == seqs.end());
}

}  // namespace rill::e2e::http

namespace rill::e2e::http {

namespace {

// An HTTPS receiver (OpenSSL, one connection at a time) answering 200 to every POST.
class TlsReceiver {
 public:
  TlsReceiver(const std::filesystem::path& cert, const std::filesystem::path& key) {
    std::signal(SIGPIPE, SIG_IGN);  // OpenSSL writes to sockets whose peer may have gone
    m_ctx = SSL_CTX_new(TLS_server_method());
    REQUIRE(SSL_CTX_use_certificate_chain_file(m_ctx, cert.c_str()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(m_ctx, key.c_str(), SSL_FILETYPE_PEM) == 1);
    m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(m_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(m_fd, 16) == 0);
    ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&a), &len);
    m_port = ntohs(a.sin_port);
    m_thread = std::thread([this] { loop(); });
  }
  ~TlsReceiver() {
    m_stop = true;
    ::shutdown(m_fd, SHUT_RDWR);
    m_thread.join();
    {
      std::lock_guard lock(m_mu);
      for (const int c : m_clients) ::shutdown(c, SHUT_RDWR);  // unblocks their SSL_read
    }
    for (auto& t : m_conns) t.join();
    for (const int c : m_clients) ::close(c);
    ::close(m_fd);
    SSL_CTX_free(m_ctx);
  }
  [[nodiscard]] std::string url() const { return "https://127.0.0.1:" + std::to_string(m_port) + "/hook"; }
  std::vector<std::string> bodies() {
    std::lock_guard lock(m_mu);
    return m_bodies;
  }

 private:
  // One thread per connection: curl may open several at once (the delivery window).
  void loop() {
    while (!m_stop) {
      pollfd p{m_fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept(m_fd, nullptr, nullptr);
      if (c < 0) continue;
      {
        std::lock_guard lock(m_mu);
        m_clients.push_back(c);
      }
      m_conns.emplace_back([this, c] {
        SSL* ssl = SSL_new(m_ctx);
        SSL_set_fd(ssl, c);
        if (SSL_accept(ssl) == 1) serve(ssl);
        SSL_free(ssl);
        ::shutdown(c, SHUT_RDWR);  // closed by the destructor, after every thread is joined
      });
    }
  }
  void serve(SSL* ssl) {
    std::string buf;
    char chunk[8192];
    for (;;) {
      std::size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        const int n = SSL_read(ssl, chunk, sizeof chunk);
        if (n <= 0) return;
        buf.append(chunk, static_cast<std::size_t>(n));
      }
      std::size_t length = 0;
      const auto cl = buf.find("Content-Length: ");
      if (cl != std::string::npos && cl < end) length = std::stoul(buf.substr(cl + 16));
      while (buf.size() < end + 4 + length) {
        const int n = SSL_read(ssl, chunk, sizeof chunk);
        if (n <= 0) return;
        buf.append(chunk, static_cast<std::size_t>(n));
      }
      {
        std::lock_guard lock(m_mu);
        m_bodies.push_back(buf.substr(end + 4, length));
      }
      buf.erase(0, end + 4 + length);
      const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
      if (SSL_write(ssl, resp.data(), static_cast<int>(resp.size())) <= 0) return;
    }
  }

  SSL_CTX* m_ctx = nullptr;
  int m_fd = -1;
  int m_port = 0;
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
  std::vector<std::thread> m_conns;
  std::vector<int> m_clients;
  std::mutex m_mu;
  std::vector<std::string> m_bodies;
};

}  // namespace

TEST_CASE("HTTPS delivery verifies the receiver's certificate against a CA the test creates") {
  TempDir dir;
  const auto d = dir.path().string();
  shell(dir, "ca",
        "cd " + d +
            " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem"
            " -subj /CN=rill-test-ca -days 1 2>/dev/null"
            " && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key -out srv.csr"
            " -subj /CN=127.0.0.1 2>/dev/null"
            " && printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf"
            " && openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 1"
            " -extfile ext.cnf 2>/dev/null");
  TlsReceiver rx(dir / "srv.pem", dir / "srv.key");
  {
    INFO("trusted through --ca-file: delivered");
    const auto ep = tcp_endpoint(free_port());
    auto sub = spawn_rill(dir, "deliver",
                          {"sub", ep, rx.url(), "t", "--count", "2", "--ca-file", (dir / "ca.pem").string(),
                           "--dead-letter", (dir / "dlq1").string()});
    auto pub = spawn_rill(dir, "pub", {"pub", ep, "t", "--count", "2", "--size", "64", "--wait-subs", "1"});
    REQUIRE(pub->wait(30s).ok());
    REQUIRE(sub->wait(30s).ok());
    CHECK(parse_stats(sub->out())["delivered"] == 2);
    CHECK(parse_stats(sub->out())["attempts"] == 2);
    auto bodies = rx.bodies();
    REQUIRE(bodies.size() == 2);
    std::sort(bodies.begin(), bodies.end());  // two deliveries in flight at once: any order
    CHECK(bodies[0].starts_with("rill 1"));
    CHECK(bodies[1].starts_with("rill 2"));
  }
  {
    INFO("not trusted (system CAs only): every attempt fails verification, then dead-lettered");
    const auto ep = tcp_endpoint(free_port());
    auto sub = spawn_rill(dir, "deliver2",
                          {"sub", ep, rx.url(), "t", "--count", "1", "--retry-schedule", "0,50ms", "--dead-letter",
                           (dir / "dlq2").string()});
    auto pub = spawn_rill(dir, "pub2", {"pub", ep, "t", "--count", "1", "--wait-subs", "1"});
    REQUIRE(pub->wait(30s).ok());
    REQUIRE(sub->wait(30s).ok());
    CHECK(parse_stats(sub->out())["delivered"] == 0);
    const auto dlq = read_file(dir / "dlq2");
    CHECK(dlq.find("gave up after 2 attempts") != std::string::npos);
    CHECK(dlq.find("certificate") != std::string::npos);
    CHECK(rx.bodies().size() == 2);  // nothing more reached the receiver
  }
}

}  // namespace rill::e2e::http
