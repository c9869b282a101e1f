// End-to-end over udp multicast on loopback: real `rill pub` / `rill sub` processes,
// both modes, the policies, large messages and garbage on the group.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "checks.hpp"
#include "process.hpp"
#include "streams.hpp"

namespace rill::e2e {

namespace {

// A group of its own per case and per process; the port is one the OS just had free.
std::string udp_endpoint(const std::string& query) {
  static int k = 0;
  ++k;
  const auto pid = static_cast<unsigned>(getpid());
  return "udp://239.254." + std::to_string(pid % 250) + "." + std::to_string(k) + ":" + std::to_string(free_port()) +
         "?iface=127.0.0.1&" + query;
}

}  // namespace

TEST_CASE("reliable: two subscribers each get all 50000 messages, in order, none twice") {
  constexpr std::uint64_t n = 50000;
  TempDir dir;
  const auto ep = udp_endpoint("reliable=1");
  auto a = spawn_rill(dir, "a",
                      {"sub", ep, "md/", "--count", str(n), "--idle-exit-ms", "3000", "--format", "text", "--policy",
                       "drop-oldest:65536"});
  auto b = spawn_rill(dir, "b",
                      {"sub", ep, "md/", "--count", str(n), "--idle-exit-ms", "3000", "--format", "text", "--policy",
                       "backpressure:4096"});
  auto pub = spawn_rill(
      dir, "pub", {"pub", ep, "md/x", "--count", str(n), "--size", "100", "--wait-subs", "2", "--timeout-ms", "20000"});
  const auto p = finish_pub(*pub);
  CHECK(p.stats["sent"] == n);
  CHECK(p.stats["timeouts"] == 0);
  for (auto* s : {a.get(), b.get()}) {
    const auto stats = finish_sub(*s);
    CHECK(stats["received"] == n);
    CHECK(stats["gaps"] == 0);
    const auto msgs = parse_text(s->out(), "md/x");
    CHECK(msgs.bad == 0);
    CHECK(msgs.seqs.size() == n);
    CHECK(is_run_from(msgs.seqs, 1));
  }
}

TEST_CASE("best effort: injected 5% loss is counted exactly (received + gaps == sent)") {
  constexpr std::uint64_t n = 30000;
  TempDir dir;
  const auto ep = udp_endpoint("reliable=0");
  auto sub = spawn_rill(dir, "sub",
                        {"sub", ep + "&fault_data=0.05,0,0&fault_seed=9", "md/", "--idle-exit-ms", "2000", "--format",
                         "text", "--policy", "drop-oldest:65536"});
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "md/x", "--count", str(n), "--wait-subs", "1", "--rate", "200000"});
  const auto p = finish_pub(*pub);
  const auto s = finish_sub(*sub);
  CHECK(p.stats["sent"] == n);
  CHECK(s["received"] + s["gaps"] == n);
  CHECK(s["gaps"] > n / 40);
  CHECK(s["dropped"] == 0);  // lost on the way, not by its policy
  const auto msgs = parse_text(sub->out(), "md/x");
  CHECK(msgs.seqs.size() == s["received"]);
  CHECK(first_not_increasing(msgs.seqs) == msgs.seqs.size());
}

TEST_CASE("reliable backpressure: a slow subscriber gets everything and holds the publisher back") {
  constexpr std::uint64_t n = 20000;
  constexpr std::uint64_t work_us = 50;
  TempDir dir;
  const auto ep = udp_endpoint("reliable=1");
  auto sub = spawn_rill(dir, "sub",
                        {"sub", ep, "md/", "--count", str(n), "--idle-exit-ms", "3000", "--format", "text", "--policy",
                         "backpressure:64", "--work-us", str(work_us)});
  auto pub =
      spawn_rill(dir, "pub", {"pub", ep, "md/x", "--count", str(n), "--wait-subs", "1", "--timeout-ms", "20000"});
  const auto p = finish_pub(*pub);
  const auto s = finish_sub(*sub);
  CHECK(p.stats["timeouts"] == 0);
  CHECK(s["received"] == n);
  CHECK(s["gaps"] == 0);
  CHECK(is_run_from(parse_text(sub->out(), "md/x").seqs, 1));
  // The publisher could only go as fast as the handler: it waited most of n * work.
  CHECK(p.stats["blocked_ns"] >= static_cast<std::uint64_t>(0.5 * n * work_us * 1000));
  CHECK(p.exit.seconds() >= 0.9 * n * work_us / 1e6);
}

TEST_CASE("drop-oldest on a slow subscriber: losses are its policy's, counted, and the publisher is not slowed") {
  constexpr std::uint64_t n = 20000;
  TempDir dir;
  const auto ep = udp_endpoint("reliable=1");
  auto sub = spawn_rill(dir, "sub",
                        {"sub", ep, "md/", "--idle-exit-ms", "1500", "--format", "text", "--policy", "drop-oldest:100",
                         "--work-us", "5000"});
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "md/x", "--count", str(n), "--wait-subs", "1"});
  const auto p = finish_pub(*pub);
  CHECK(p.stats["blocked_ns"] == 0);
  CHECK(p.exit.seconds() < 10);  // 20000 * 5 ms would be 100 s
  const auto s = finish_sub(*sub);
  check_policy_losses(s, parse_text(sub->out(), "md/x"), n);
}

TEST_CASE("reliable: 4 MiB messages are fragmented and reassembled intact") {
  constexpr std::uint64_t n = 8;
  TempDir dir;
  const auto ep = udp_endpoint("reliable=1");
  auto sub =
      spawn_rill(dir, "sub", {"sub", ep, "md/", "--count", str(n), "--idle-exit-ms", "5000", "--format", "json"});
  auto pub =
      spawn_rill(dir, "pub", {"pub", ep, "md/x", "--count", str(n), "--size", str(4u << 20), "--wait-subs", "1"});
  finish_pub(*pub);
  const auto s = finish_sub(*sub);
  CHECK(s["received"] == n);
  CHECK(s["gaps"] == 0);
  std::uint64_t whole = 0;
  const auto out = sub->out();
  for (const auto line : lines(out)) {
    if (line.starts_with("{\"topic\"")) whole += json_u64(line, "size") == std::uint64_t{4u << 20} ? 1 : 0;
  }
  CHECK(whole == n);
}

TEST_CASE("garbage datagrams on the group are counted and dropped; real messages still arrive intact") {
  constexpr std::uint64_t n = 2000;
  TempDir dir;
  const auto ep = udp_endpoint("reliable=1");
  auto sub =
      spawn_rill(dir, "sub", {"sub", ep, "md/", "--count", str(n), "--idle-exit-ms", "3000", "--format", "text"});
  // Garbage on the group all the while the publisher runs (its --wait-subs makes sure
  // the subscriber has joined before the first message).
  const auto colon = ep.find(':', 6);
  const auto group = ep.substr(6, colon - 6);
  const auto port = std::stoi(ep.substr(colon + 1));
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  REQUIRE(fd >= 0);
  in_addr lo{};
  inet_pton(AF_INET, "127.0.0.1", &lo);
  setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &lo, sizeof lo);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, group.c_str(), &to.sin_addr);
  const auto send_garbage = [&] {
    const char* shapes[] = {"hello", "RLU\x01\x01", "RLU\x02\x01\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08",
                            "RLU\x01\x02\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff"};
    const std::size_t lens[] = {5, 5, 16, 24};
    for (int i = 0; i < 4; ++i) ::sendto(fd, shapes[i], lens[i], 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  };
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "md/x", "--count", str(n), "--wait-subs", "1", "--rate", "20000"});
  while (pub->running()) {
    send_garbage();
    ::usleep(1000);
  }
  finish_pub(*pub);
  ::close(fd);
  const auto s = finish_sub(*sub);
  CHECK(s["received"] == n);
  CHECK(s["gaps"] == 0);
  CHECK(s["malformed"] > 0);
  CHECK(is_run_from(parse_text(sub->out(), "md/x").seqs, 1));
}

TEST_CASE("bad udp endpoints are usage errors with a reason") {
  TempDir dir;
  for (const auto& bad : {"udp://10.0.0.1:7000", "udp://239.1.1.1:7000?ttl=999", "udp://239.1.1.1:7000?reliable=2",
                          "udp://239.1.1.1:7000?bogus=1", "udp://239.1.1.1"}) {
    auto p = spawn_rill(dir, "bad", {"pub", bad, "t"});
    const auto e = p->wait(10s);
    CHECK_MESSAGE(e.code != 0, bad);
    CHECK_MESSAGE(p->err().find("udp") != std::string::npos, p->err());
  }
}

}  // namespace rill::e2e
