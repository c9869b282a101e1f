// Authenticated udp multicast end to end: real `rill pub` / `rill sub` processes with a
// group key (`rill keygen --udp`), and an injector in this test that captures the real
// datagrams from the group and sends forged ones beside them (bit flips, truncated MACs,
// replays of captured datagrams, old ones past the window), to the group and to the
// publisher's control address. Every forgery must be counted and none delivered, while
// reliable delivery of the honest traffic completes.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "checks.hpp"
#include "process.hpp"
#include "streams.hpp"

namespace rill::e2e {

namespace {

struct Group {
  std::string address;
  int port = 0;
  std::string endpoint;  ///< without query
};

Group fresh_group() {
  static int k = 0;
  ++k;
  const auto pid = static_cast<unsigned>(getpid());
  Group g;
  g.address = "239.253." + std::to_string(pid % 250) + "." + std::to_string(k);
  g.port = free_port();
  g.endpoint = "udp://" + g.address + ":" + std::to_string(g.port) + "?iface=127.0.0.1&reliable=1";
  return g;
}

std::string make_key(const TempDir& dir, const std::string& name) {
  const auto path = (dir / name).string();
  auto p = spawn_rill(dir, "keygen-" + name, {"keygen", "--udp", path});
  const auto e = p->wait(10s);
  REQUIRE_MESSAGE(e.ok(), p->err());
  REQUIRE(p->out().starts_with("key id "));
  return path;
}

sockaddr_in address_of(const std::string& ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

// A member of the group that sees every datagram on it, and a socket to send forgeries from.
class Injector {
 public:
  explicit Injector(const Group& g) : m_group(address_of(g.address, g.port)) {
    m_capture = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    m_send = ::socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE((m_capture >= 0 && m_send >= 0));
    const int one = 1;
    ::setsockopt(m_capture, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    REQUIRE(::bind(m_capture, reinterpret_cast<const sockaddr*>(&m_group), sizeof m_group) == 0);
    ip_mreq mreq{};
    mreq.imr_multiaddr = m_group.sin_addr;
    inet_pton(AF_INET, "127.0.0.1", &mreq.imr_interface);
    REQUIRE(::setsockopt(m_capture, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) == 0);
    ::setsockopt(m_send, IPPROTO_IP, IP_MULTICAST_IF, &mreq.imr_interface, sizeof mreq.imr_interface);
    const auto lo = address_of("127.0.0.1", 0);
    REQUIRE(::bind(m_send, reinterpret_cast<const sockaddr*>(&lo), sizeof lo) == 0);
    socklen_t len = sizeof m_self;
    ::getsockname(m_send, reinterpret_cast<sockaddr*>(&m_self), &len);
  }
  ~Injector() {
    ::close(m_capture);
    ::close(m_send);
  }
  Injector(const Injector&) = delete;
  Injector& operator=(const Injector&) = delete;

  /// The next datagram someone else sent to the group (empty: none within `ms`).
  std::vector<std::byte> capture(int ms, sockaddr_in& from) {
    pollfd p{m_capture, POLLIN, 0};
    if (::poll(&p, 1, ms) <= 0) return {};
    std::vector<std::byte> buf(65536);
    socklen_t len = sizeof from;
    const auto n = ::recvfrom(m_capture, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n <= 0 || from.sin_port == m_self.sin_port) return {};  // our own forgeries come back too
    buf.resize(static_cast<std::size_t>(n));
    return buf;
  }
  bool to_group(std::span<const std::byte> d) { return send(d, m_group); }
  bool send(std::span<const std::byte> d, const sockaddr_in& to) {
    return ::sendto(m_send, d.data(), d.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) ==
           static_cast<ssize_t>(d.size());
  }

 private:
  sockaddr_in m_group{};
  sockaddr_in m_self{};
  int m_capture = -1;
  int m_send = -1;
};

}  // namespace

TEST_CASE("forged, truncated and replayed datagrams at 10% beside real traffic: all refused and counted; reliable "
          "delivery completes") {
  constexpr std::uint64_t n = 20000;
  TempDir dir;
  const auto key = make_key(dir, "group.key");
  const auto g = fresh_group();
  const auto ep = g.endpoint + "&auth_key_file=" + key;
  Injector inj(g);
  // Some real loss, reordering and duplication on the subscriber's side too, so NAKs,
  // retransmissions (sealed afresh) and the duplicate path run under authentication.
  auto sub = spawn_rill(dir, "sub",
                        {"sub", ep + "&fault_data=0.01,0.01,0.01&fault_seed=7", "md/", "--idle-exit-ms", "2500",
                         "--format", "text", "--policy", "drop-oldest:65536"});
  auto pub = spawn_rill(dir, "pub",
                        {"pub", ep, "md/x", "--count", str(n), "--size", "64", "--wait-subs", "1", "--rate", "20000"});
  std::mt19937_64 rng(23);
  std::vector<std::vector<std::byte>> early;  // replayed much later: outside the window
  std::uint64_t captured = 0, to_group = 0, to_pub = 0;
  std::uint64_t kinds[5] = {};
  sockaddr_in pub_addr{};
  bool pub_known = false;
  while (pub->running()) {
    sockaddr_in from{};
    auto d = inj.capture(2, from);
    if (d.empty()) continue;
    ++captured;
    if (!pub_known) {
      pub_addr = from;  // the publisher sends from its control address
      pub_known = true;
    }
    if (early.size() < 64) early.push_back(d);
    if (rng() % 10 != 0) continue;
    auto forged = d;
    const auto kind = rng() % 5;
    switch (kind) {
      case 0:  // one bit flipped anywhere: header, body or trailer
        forged[rng() % forged.size()] ^= std::byte(1u << (rng() % 8));
        break;
      case 1:  // MAC cut short
        forged.resize(forged.size() - 1 - rng() % 16);
        break;
      case 2:  // the real datagram again, at once
        break;
      case 3:  // one of the first datagrams, thousands of datagrams later
        if (captured < 4000) continue;
        forged = early[rng() % early.size()];
        break;
      default: {  // to the publisher's control address: a flipped or a replayed multicast datagram
        if (rng() % 2 == 0) forged[16 + rng() % (forged.size() - 16)] ^= std::byte{0x40};
        to_pub += inj.send(forged, pub_addr) ? 1 : 0;
        ++kinds[kind];
        continue;
      }
    }
    to_group += inj.to_group(forged) ? 1 : 0;
    ++kinds[kind];
  }
  const auto p = finish_pub(*pub);
  const auto s = finish_sub(*sub);
  MESSAGE("captured " << captured << ", forged to the group " << to_group << " (flip " << kinds[0] << ", cut "
                      << kinds[1] << ", replay " << kinds[2] << ", old " << kinds[3] << "), to the publisher "
                      << to_pub);
  CHECK(p.stats["sent"] == n);
  CHECK(s["received"] == n);
  CHECK(s["gaps"] == 0);
  const auto msgs = parse_text(sub->out(), "md/x");
  CHECK(msgs.seqs.size() == n);
  CHECK(is_run_from(msgs.seqs, 1));
  // Every forgery sent to the group was refused before it was read (none reached the
  // decoder: nothing malformed), and no real datagram was refused.
  CHECK(s["auth_rejected"] == to_group);
  CHECK(s["malformed"] == 0);
  CHECK(to_group >= captured / 20);
  CHECK(kinds[3] > 0);
  // The publisher reads control until it closes: it refused what reached it by then.
  CHECK(p.stats["auth_rejected"] >= 1);
  CHECK(p.stats["auth_rejected"] <= to_pub);
}

TEST_CASE("a receiver without the key, or with another key, delivers nothing; a keyed one takes nothing plain") {
  constexpr std::uint64_t n = 2000;
  TempDir dir;
  const auto key = make_key(dir, "group.key");
  const auto other = make_key(dir, "other.key");
  const auto g = fresh_group();
  auto keyless = spawn_rill(dir, "keyless", {"sub", g.endpoint, "md/", "--idle-exit-ms", "2000", "--format", "text"});
  auto stranger = spawn_rill(dir, "stranger", {"sub", g.endpoint + "&auth_key_file=" + other, "md/", "--idle-exit-ms",
                                               "2000", "--format", "text"});
  auto keyed = spawn_rill(dir, "keyed", {"sub", g.endpoint + "&auth_key_file=" + key, "md/", "--count", str(n),
                                         "--idle-exit-ms", "3000", "--format", "text"});
  auto pub = spawn_rill(dir, "pub", {"pub", g.endpoint + "&auth_key_file=" + key, "md/x", "--count", str(n),
                                     "--wait-subs", "1", "--rate", "20000"});
  const auto p = finish_pub(*pub);
  CHECK(p.stats["sent"] == n);
  CHECK(finish_sub(*keyed, "keyed")["received"] == n);
  for (auto* who : {keyless.get(), stranger.get()}) {
    const auto s = finish_sub(*who, "keyless/stranger");
    CHECK(s["received"] == 0);
    CHECK(s["publishers"] == 0);
    CHECK(s["auth_rejected"] > 0);
    CHECK(s["malformed"] == 0);
    CHECK(parse_text(who->out(), "md/x").seqs.empty());
  }

  // The other way round: a plain publisher, a keyed subscriber beside a plain one.
  const auto g2 = fresh_group();
  auto keyed2 = spawn_rill(dir, "keyed2", {"sub", g2.endpoint + "&auth_key_file=" + key, "md/", "--idle-exit-ms",
                                           "2000", "--format", "text"});
  auto plain = spawn_rill(dir, "plain",
                          {"sub", g2.endpoint, "md/", "--count", str(n), "--idle-exit-ms", "3000", "--format", "text"});
  auto pub2 = spawn_rill(dir, "pub2",
                         {"pub", g2.endpoint, "md/x", "--count", str(n), "--wait-subs", "1", "--rate", "20000"});
  finish_pub(*pub2, "pub2");
  CHECK(finish_sub(*plain, "plain")["received"] == n);
  const auto s = finish_sub(*keyed2, "keyed2");
  CHECK(s["received"] == 0);
  CHECK(s["auth_rejected"] > 0);
  CHECK(s["malformed"] == 0);
}

TEST_CASE("bad auth_key_file settings are errors that say why") {
  TempDir dir;
  const auto key = make_key(dir, "group.key");
  const auto g = fresh_group();
  // Readable by others: refused like an ssh private key.
  REQUIRE(::chmod(key.c_str(), 0644) == 0);
  auto loose = spawn_rill(dir, "loose", {"pub", g.endpoint + "&auth_key_file=" + key, "t"});
  CHECK(loose->wait(10s).code != 0);
  CHECK_MESSAGE(loose->err().find("chmod 600") != std::string::npos, loose->err());
  auto missing = spawn_rill(dir, "missing", {"pub", g.endpoint + "&auth_key_file=" + (dir / "nope").string(), "t"});
  CHECK(missing->wait(10s).code != 0);
  CHECK_MESSAGE(missing->err().find("auth_key_file") != std::string::npos, missing->err());
  auto again = spawn_rill(dir, "again", {"keygen", "--udp", key});  // never overwrites
  CHECK(again->wait(10s).code != 0);
}

}  // namespace rill::e2e
