// Helpers shared by the in-process tests: fresh ports and attaching a pair.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "rill/rill.hpp"
#include "temp_dir.hpp"
#ifdef RILL_TEST_UDP_AUTH
#include <cstdlib>

#include "rill/udp_auth_key.hpp"
#endif

namespace rilltest {

#ifdef RILL_TEST_UDP_AUTH
/// This test process's udp group key (made on first use, removed at exit).
inline const std::string& udp_test_key() {
  static TempDir dir;
  static const std::string path = [] {
    auto p = (dir.path() / "group.key").string();
    if (!rill::write_udp_auth_key(p)) std::abort();
    return p;
  }();
  return path;
}
#endif

/// A TCP port the kernel just handed out on 127.0.0.1 (free at the time of asking).
/// Built with RILL_TEST_UDP (tests/udp: the same cases over udp), a multicast group and
/// port of its own on 127.0.0.1 instead (mtu 9000, so a batch of 16 small messages fits
/// one datagram as the batching cases expect).
inline std::string fresh_endpoint() {
#if defined(RILL_TEST_UDP) && defined(RILL_TEST_UDP_AUTH)
  // The same again with every datagram authenticated (auth_key_file).
  return udp_test_endpoint(252, 38000, "reliable=1&linger_ms=300&mtu=9000&auth_key_file=" + udp_test_key());
#elif defined(RILL_TEST_UDP)
  return udp_test_endpoint(253, 30000, "reliable=1&linger_ms=300&mtu=9000");
#endif
#ifdef RILL_TEST_SHM_ENDPOINTS
  // Built with RILL_TEST_SHM_ENDPOINTS (tests/shm_durable.cmake): the same cases over shm.
  static unsigned n = 0;
  return "shm://rilltest-" + std::to_string(::getpid()) + "-e" + std::to_string(n++);
#endif
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return "tcp://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
}

/// Drives both sides on one thread until the publisher has the subscription and the
/// subscriber has been welcomed (so nothing published afterwards is a start-up loss).
inline bool attach(rill::Publisher& pub, rill::Subscriber& sub, std::size_t subscribers = 1) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    sub.poll([](const rill::MessageView&) {}, 0);
    if (pub.wait_for_subscribers(subscribers, std::chrono::milliseconds(5))) {
      // The welcome is on its way; once the subscriber has read it, it knows the publisher.
      while (std::chrono::steady_clock::now() < deadline) {
        sub.poll([](const rill::MessageView&) {}, 0);
        if (sub.stats().publishers > 0) return true;
        std::this_thread::yield();
      }
    }
  }
  return false;
}

}  // namespace rilltest

namespace rilltest {


/// Polls until `done()` or 10 s; returns done().
template <class Done>
bool poll_until(rill::Subscriber& sub, rill::Subscriber::Handler h, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done() && std::chrono::steady_clock::now() < deadline) sub.wait_poll(h, 256, std::chrono::milliseconds(5));
  return done();
}

/// A reliable udp multicast group and port on 127.0.0.1 that no other test process uses.
inline std::string fresh_udp_endpoint() {
  return udp_test_endpoint(252, 40000, "reliable=1&linger_ms=300");
}

/// A shared-memory endpoint no other test (or test process) uses.
inline std::string fresh_shm_endpoint(const std::string& query = {}) {
  static int counter = 0;
  std::string ep = "shm://rilltest-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  if (!query.empty()) ep += "?" + query;
  return ep;
}

}  // namespace rilltest
