// End-to-end: tcp endpoints with CurveZMQ (rill keygen, ?curve_key=&curve_allow= on the
// publisher, ?curve_key=&curve_server= on the subscriber), with real `rill` processes, a raw
// ZeroMQ peer, and a relay that sees the bytes on the wire.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include <zmq.hpp>

#include "checks.hpp"
#include "process.hpp"
#include "streams.hpp"
#include "tcp_relay.hpp"

namespace rill::e2e {

namespace {

// Key pairs made by `rill keygen` in `dir`: the publisher, an allowed and a stranger subscriber.
struct Keys {
  std::string dir;
  std::string pub_key, pub_pub, sub_key, sub_pub, other_key, other_pub, allow;
};

Keys make_keys(const TempDir& dir) {
  Keys k;
  k.dir = dir.path().string();
  for (const std::string name : {"pub", "sub", "other"}) {
    auto p = spawn_rill(dir, "keygen-" + name, {"keygen", (dir / name).string()});
    expect_clean_exit(*p, "keygen");
  }
  k.pub_key = (dir / "pub.key").string();
  k.pub_pub = (dir / "pub.pub").string();
  k.sub_key = (dir / "sub.key").string();
  k.sub_pub = (dir / "sub.pub").string();
  k.other_key = (dir / "other.key").string();
  k.other_pub = (dir / "other.pub").string();
  k.allow = (dir / "allow").string();
  std::ofstream(k.allow) << "# subscribers let in\n" << read_file(k.sub_pub);
  return k;
}

std::string pub_ep(int port, const Keys& k) {
  return tcp_endpoint(port) + "?curve_key=" + k.pub_key + "&curve_allow=" + k.allow;
}
std::string sub_ep(int port, const std::string& key, const std::string& server) {
  return tcp_endpoint(port) + "?curve_key=" + key + "&curve_server=" + server;
}

bool can_connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::size_t count_of(std::string_view text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string_view::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("keygen writes a 0600 key pair and a public file, and never overwrites") {
  TempDir dir;
  auto p = spawn_rill(dir, "keygen", {"keygen", (dir / "a").string()});
  expect_clean_exit(*p, "keygen");
  struct stat key_st{};
  struct stat pub_st{};
  REQUIRE(::stat((dir / "a.key").c_str(), &key_st) == 0);
  REQUIRE(::stat((dir / "a.pub").c_str(), &pub_st) == 0);
  CHECK((key_st.st_mode & 0777) == 0600);
  CHECK((pub_st.st_mode & 0777) == 0644);
  const auto key_text = read_file(dir / "a.key");
  const auto key_lines = lines(key_text);
  REQUIRE(key_lines.size() == 2);
  CHECK(key_lines[0].size() == 40);
  CHECK(key_lines[1].size() == 40);
  CHECK(key_lines[0] != key_lines[1]);
  CHECK(read_file(dir / "a.pub") == std::string(key_lines[0]) + "\n");
  CHECK(p->out() == std::string(key_lines[0]) + "\n");
  // Independently: libzmq derives the same public key from the secret one.
  char derived[41] = {};
  REQUIRE(zmq_curve_public(derived, std::string(key_lines[1]).c_str()) == 0);
  CHECK(std::string(derived) == key_lines[0]);

  auto again = spawn_rill(dir, "keygen-again", {"keygen", (dir / "a").string()});
  CHECK(again->wait(10s).code == 2);
  CHECK(read_file(dir / "a.pub") == std::string(key_lines[0]) + "\n");

  // A key file others may read is refused by the publisher, with the reason.
  ::chmod((dir / "a.key").c_str(), 0644);
  auto loose = spawn_rill(dir, "loose", {"pub", tcp_endpoint(free_port()) + "?curve_key=" + (dir / "a.key").string(), "t"});
  CHECK(loose->wait(10s).code == 2);
  CHECK(loose->err().find("chmod 600") != std::string::npos);
}

TEST_CASE("an allowed subscriber gets every message of several topics, and the wire carries no plaintext") {
  constexpr std::uint64_t n = 3000;
  const std::string marker = "PLAINTEXT-MARKER-7f3a";
  TempDir dir;
  const auto k = make_keys(dir);

  // The same run in clear and with CURVE, each through a relay that keeps the bytes.
  const auto run = [&](const std::string& tag, bool curve) {
    const int port = free_port();
    TcpRelay relay(port);
    const auto pep = curve ? pub_ep(port, k) : tcp_endpoint(port);
    const auto sep = curve ? sub_ep(relay.port(), k.sub_key, k.pub_pub) : tcp_endpoint(relay.port());
    // The publisher first: a relay that cannot reach it closes at once, which a CURVE
    // subscriber would rightly report after a few tries.
    auto pub = spawn_rill(dir, tag + "-pub",
                          {"pub", pep, "md/a", "md/b", "md/c", "--count", str(n), "--data", marker, "--wait-subs", "1"});
    REQUIRE(wait_until([&] { return can_connect(port); }, 10s));
    auto sub = spawn_rill(dir, tag + "-sub",
                          {"sub", sep, "md/", "--count", str(3 * n), "--policy", "backpressure:256", "--format", "text"});
    finish_pub(*pub);
    const auto stats = finish_sub(*sub);
    CHECK(stats["received"] == 3 * n);
    CHECK(stats["gaps"] == 0);
    const auto out = sub->out();
    for (const std::string topic : {"md/a ", "md/b ", "md/c "}) CHECK(count_of(out, topic) == n);
    CHECK(count_of(out, marker) == 3 * n);
    return relay.captured();
  };

  const auto clear = run("clear", false);
  const auto secret = run("curve", true);
  MESSAGE("relay saw " << clear.size() << " bytes in clear, " << secret.size() << " with CURVE");
  // The control: in clear the marker crosses the wire once per message (a batch may hold several).
  CHECK(count_of(clear, marker) == 3 * n);
  CHECK(clear.find("md/a") != std::string::npos);
  // With CURVE neither the payload nor the topic names are readable.
  CHECK(secret.size() > 3 * n * marker.size());
  CHECK(count_of(secret, marker) == 0);
  CHECK(secret.find("md/a") == std::string::npos);
  CHECK(secret.find("CURVE") != std::string::npos);  // the ZMTP greeting names the mechanism
}

TEST_CASE("a stranger key and a plain peer get nothing and are counted; the allowed one is served meanwhile") {
  constexpr std::uint64_t n = 500;
  TempDir dir;
  const auto k = make_keys(dir);
  const int port = free_port();
  auto pub = spawn_rill(dir, "pub",
                        {"pub", pub_ep(port, k), "t", "--count", str(n), "--wait-subs", "1", "--rate", "500",
                         "--linger-ms", "500"});
  auto good = spawn_rill(dir, "good", {"sub", sub_ep(port, k.sub_key, k.pub_pub), "t", "--count", str(n), "--format", "text"});
  auto stranger = spawn_rill(dir, "stranger", {"sub", sub_ep(port, k.other_key, k.pub_pub), "t", "--format", "text"});

  // A plain ZeroMQ DEALER (no CURVE) that keeps asking.
  zmq::context_t ctx;
  zmq::socket_t plain(ctx, zmq::socket_type::dealer);
  plain.set(zmq::sockopt::linger, 0);
  plain.connect(tcp_endpoint(port));
  std::size_t plain_got = 0;

  // The stranger is told why, and gives up (exit 1), while the publisher goes on.
  const auto e = stranger->wait(20s);
  CHECK(e.code == 1);
  CHECK(stranger->err().find("refused our CURVE key") != std::string::npos);
  CHECK(lines(stranger->out()).empty());
  const auto deadline = std::chrono::steady_clock::now() + 1s;
  while (std::chrono::steady_clock::now() < deadline) {
    (void)plain.send(zmq::str_buffer("hello"), zmq::send_flags::dontwait);
    zmq::message_t m;
    if (plain.recv(m, zmq::recv_flags::dontwait)) ++plain_got;
    std::this_thread::sleep_for(10ms);
  }
  CHECK(plain_got == 0);

  const auto s = finish_sub(*good, "good");
  CHECK(s["received"] == n);
  CHECK(s["gaps"] == 0);
  const auto p = finish_pub(*pub);
  CHECK(p.stats["sent"] == n);
  CHECK(p.stats["auth_rejected"] >= 1);
  // Logged once for the stranger's key, whatever the number of its attempts.
  const auto other_pub = read_file(k.other_pub);
  CHECK(count_of(pub->err(), lines(other_pub)[0]) == 1);
}

TEST_CASE("a key added to the allow file is let in without a restart") {
  TempDir dir;
  const auto k = make_keys(dir);
  const int port = free_port();
  auto pub = spawn_rill(dir, "pub", {"pub", pub_ep(port, k), "t", "--count", "20", "--wait-subs", "1", "--wait-ms", "20000"});
  // Refused first: the stranger reports it and stops.
  auto first = spawn_rill(dir, "first", {"sub", sub_ep(port, k.other_key, k.pub_pub), "t", "--count", "20"});
  CHECK(first->wait(20s).code == 1);
  std::ofstream(k.allow, std::ios::app) << read_file(k.other_pub);
  auto second = spawn_rill(dir, "second", {"sub", sub_ep(port, k.other_key, k.pub_pub), "t", "--count", "20", "--format", "text"});
  const auto s = finish_sub(*second, "second");
  CHECK(s["received"] == 20);
  finish_pub(*pub);
}

TEST_CASE("a wrong server key is a clear error, not a hang") {
  TempDir dir;
  const auto k = make_keys(dir);
  const int port = free_port();
  auto pub = spawn_rill(dir, "pub", {"pub", pub_ep(port, k), "t", "--count", "5", "--wait-subs", "1", "--wait-ms", "15000"});
  // Our key is allowed, but we name another publisher's public key.
  auto sub = spawn_rill(dir, "sub", {"sub", sub_ep(port, k.sub_key, k.other_pub), "t", "--count", "5"});
  const auto e = sub->wait(20s);
  CHECK_FALSE(e.timed_out);
  CHECK(e.code == 1);
  CHECK(sub->err().find("curve_server is not") != std::string::npos);
  // A plain subscriber of a CURVE publisher, and a CURVE one of a plain publisher, neither hangs silently.
  const int plain_port = free_port();
  auto plain_pub = spawn_rill(dir, "plain-pub", {"pub", tcp_endpoint(plain_port), "t", "--count", "5", "--wait-subs", "1",
                                                 "--wait-ms", "15000"});
  auto curious = spawn_rill(dir, "curious", {"sub", sub_ep(plain_port, k.sub_key, k.pub_pub), "t", "--count", "5"});
  CHECK(curious->wait(20s).code == 1);
  CHECK(curious->err().find("cannot connect securely") != std::string::npos);
  pub->kill(SIGTERM);
  plain_pub->kill(SIGTERM);
}

TEST_CASE("curve_key without curve_allow lets any key in; curve_server alone brings a fresh key") {
  TempDir dir;
  const auto k = make_keys(dir);
  const int open_port = free_port();
  auto open_pub = spawn_rill(dir, "open-pub", {"pub", tcp_endpoint(open_port) + "?curve_key=" + k.pub_key, "t", "--count",
                                               "3", "--wait-subs", "1", "--data", "enc"});
  auto keyless = spawn_rill(dir, "keyless", {"sub", tcp_endpoint(open_port) + "?curve_server=" + k.pub_pub, "t", "--count",
                                             "3", "--format", "text"});
  const auto s = finish_sub(*keyless, "keyless");
  CHECK(s["received"] == 3);
  CHECK(count_of(keyless->out(), "t 3 enc") == 1);
  finish_pub(*open_pub);
  // The same fresh key is not in an allow list: refused, and told so.
  const int port = free_port();
  auto pub = spawn_rill(dir, "pub", {"pub", pub_ep(port, k), "t", "--count", "1", "--wait-subs", "1", "--wait-ms", "15000"});
  auto refused = spawn_rill(dir, "refused", {"sub", tcp_endpoint(port) + "?curve_server=" + k.pub_pub, "t", "--count", "1"});
  CHECK(refused->wait(20s).code == 1);
  CHECK(refused->err().find("refused our CURVE key") != std::string::npos);
  pub->kill(SIGTERM);
}

TEST_CASE("endpoint options: one endpoint, one security setting; bad options are usage errors") {
  TempDir dir;
  const auto k = make_keys(dir);
  const int port = free_port();
  // Two topics of one `rill pub` share the endpoint: fine. The library refuses a second
  // publisher on the same address with other curve options (see topics in the README).
  auto bad = spawn_rill(dir, "bad", {"pub", tcp_endpoint(port) + "?curve_allow=" + k.allow, "t"});
  CHECK(bad->wait(10s).code == 2);
  CHECK(bad->err().find("curve_allow needs curve_key") != std::string::npos);
  auto unknown = spawn_rill(dir, "unknown", {"sub", tcp_endpoint(port) + "?curve_secret=x", "t"});
  CHECK(unknown->wait(10s).code == 2);
  CHECK(unknown->err().find("unknown option 'curve_secret'") != std::string::npos);
  auto missing = spawn_rill(dir, "missing", {"pub", pub_ep(port, k) + "x", "t"});
  CHECK(missing->wait(10s).code == 2);
  CHECK(missing->err().find("allow file") != std::string::npos);
}

TEST_CASE("backpressure and a late joiner's history work through CURVE") {
  constexpr std::uint64_t n = 2000;
  TempDir dir;
  const auto k = make_keys(dir);
  const int port = free_port();
  auto pub = spawn_rill(dir, "pub",
                        {"pub", pub_ep(port, k), "t", "--count", str(n), "--wait-subs", "1", "--timeout-ms", "20000",
                         "--durability", "transient-local:" + str(n), "--linger-ms", "20000"});
  // A slow backpressure subscriber: nothing lost, and the publisher waited for it.
  auto slow = spawn_rill(dir, "slow", {"sub", sub_ep(port, k.sub_key, k.pub_pub), "t", "--count", str(n), "--policy",
                                       "backpressure:16", "--work-us", "200", "--format", "text"});
  const auto s = finish_sub(*slow, "slow");
  CHECK(s["received"] == n);
  CHECK(s["gaps"] == 0);
  CHECK(is_run_from(parse_text(slow->out(), "t").seqs, 1));
  // Everything is sent now; a late joiner gets it from the publisher's history.
  auto late = spawn_rill(dir, "late", {"sub", sub_ep(port, k.sub_key, k.pub_pub), "t", "--count", str(n), "--durability",
                                       "transient-local", "--policy", "backpressure:256", "--idle-exit-ms", "10000",
                                       "--format", "text"});
  const auto l = finish_sub(*late, "late");
  CHECK(l["received"] == n);
  CHECK(is_run_from(parse_text(late->out(), "t").seqs, 1));
  pub->kill(SIGTERM);
  const auto p = finish_pub(*pub);
  CHECK(p.stats["sent"] == n);
  CHECK(p.stats["blocked_ns"] > 0);
  CHECK(p.stats["replayed"] >= n);
}

}  // namespace rill::e2e
