// A tiny TCP relay for tests: listens on a loopback port, forwards every connection to a
// target port, and keeps a copy of every byte that passed in either direction (what a
// network tap would see).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace rill::e2e {

class TcpRelay {
 public:
  explicit TcpRelay(int target_port) : m_target(target_port) {
    m_listen = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr = loopback(0);
    socklen_t len = sizeof addr;
    if (m_listen < 0 || ::bind(m_listen, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(m_listen, 16) != 0 || ::getsockname(m_listen, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("relay: cannot listen on 127.0.0.1");
    }
    m_port = ntohs(addr.sin_port);
    m_thread = std::thread([this] { run(); });
  }
  ~TcpRelay() {
    m_stop = true;
    m_thread.join();
    for (const int fd : m_fds) {
      if (fd >= 0) ::close(fd);
    }
    ::close(m_listen);
  }
  TcpRelay(const TcpRelay&) = delete;
  TcpRelay& operator=(const TcpRelay&) = delete;

  [[nodiscard]] int port() const noexcept { return m_port; }
  /// Every byte relayed so far, both directions (in arrival order per read).
  [[nodiscard]] std::string captured() const {
    // Each direction of each connection as one contiguous run: interleaving the two at read
    // boundaries would split a payload that crossed two reads.
    std::lock_guard lock(m_mutex);
    std::string all;
    for (const auto& [slot, bytes] : m_captured) all += bytes;
    return all;
  }

 private:
  static sockaddr_in loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    return addr;
  }

  void run() {
    // m_fds holds pairs: [2k] the accepted side, [2k+1] the side towards the target.
    char buf[65536];
    while (!m_stop) {
      std::vector<pollfd> items{{m_listen, POLLIN, 0}};
      for (const int fd : m_fds) items.push_back({fd, POLLIN, 0});
      if (::poll(items.data(), items.size(), 50) <= 0) continue;
      if ((items[0].revents & POLLIN) != 0) accept_one();
      for (std::size_t i = 1; i < items.size(); ++i) {
        if ((items[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0 || m_fds[i - 1] < 0) continue;
        const std::size_t k = i - 1;
        const int from = m_fds[k];
        const int to = m_fds[k ^ 1];
        const auto n = ::read(from, buf, sizeof buf);
        if (n <= 0) {  // one side closed: close the pair (poll skips negative fds)
          ::close(from);
          ::close(to);
          m_fds[k] = m_fds[k ^ 1] = -1;
          continue;
        }
        {
          std::lock_guard lock(m_mutex);
          m_captured[k].append(buf, static_cast<std::size_t>(n));
        }
        for (ssize_t sent = 0; sent < n;) {
          const auto w = ::write(to, buf + sent, static_cast<std::size_t>(n - sent));
          if (w <= 0) break;
          sent += w;
        }
      }
    }
  }

  void accept_one() {
    const int in = ::accept4(m_listen, nullptr, nullptr, SOCK_CLOEXEC);
    if (in < 0) return;
    const int out = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const sockaddr_in addr = loopback(m_target);
    if (out < 0 || ::connect(out, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(in);
      if (out >= 0) ::close(out);
      return;
    }
    m_fds.push_back(in);
    m_fds.push_back(out);
  }

  int m_target;
  int m_listen = -1;
  int m_port = 0;
  std::vector<int> m_fds;
  mutable std::mutex m_mutex;
  std::map<std::size_t, std::string> m_captured;  // by fd slot: one direction of one connection
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
};

}  // namespace rill::e2e
