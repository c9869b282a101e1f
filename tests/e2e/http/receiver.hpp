// A scripted HTTP/1.1 receiver for the webhook delivery tests: plain sockets, one thread per
// connection, keep-alive; every request is recorded with its headers and body.
#pragma once

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace rill::e2e::http {

using Clock = std::chrono::steady_clock;

struct Hit {
  Clock::time_point at;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

struct Reply {
  int status = 200;
  std::string extra_headers{};  // "Name: value\r\n" lines
  bool hang = false;            // never answer (the client's timeout ends it)
  std::chrono::milliseconds delay{0};
};

// A tiny HTTP/1.1 receiver: one thread per connection, keep-alive, scripted replies.
class Receiver {
 public:
  using Script = std::function<Reply(const Hit&)>;
  explicit Receiver(Script script) : m_script(std::move(script)) {
    m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    const int one = 1;
    ::setsockopt(m_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    REQUIRE(::bind(m_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(m_fd, 64) == 0);
    ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&a), &len);
    m_port = ntohs(a.sin_port);
    m_accept = std::thread([this] { accept_loop(); });
  }
  ~Receiver() {
    m_stop = true;
    ::shutdown(m_fd, SHUT_RDWR);
    m_accept.join();
    for (auto& t : m_conns) t.join();
    ::close(m_fd);
  }
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(m_port) + "/hook"; }
  std::vector<Hit> hits() {
    std::lock_guard lock(m_mu);
    return m_hits;
  }
  int max_concurrent() const { return m_max_busy; }

 private:
  void accept_loop() {
    while (!m_stop) {
      pollfd p{m_fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept(m_fd, nullptr, nullptr);
      if (c < 0) continue;
      m_conns.emplace_back([this, c] { serve(c); });
    }
  }
  bool read_more(int c, std::string& buf) {
    char chunk[8192];
    while (!m_stop) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const auto n = ::recv(c, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buf.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
    return false;
  }
  void serve(int c) {
    std::string buf;
    for (;;) {
      std::size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        if (!read_more(c, buf)) return (void)::close(c);
      }
      Hit h;
      h.at = Clock::now();
      std::size_t length = 0;
      std::string_view head(buf.data(), end);
      for (std::size_t pos = head.find("\r\n"); pos != std::string_view::npos;) {
        const auto next = head.find("\r\n", pos + 2);
        const auto line =
            head.substr(pos + 2, next == std::string_view::npos ? std::string_view::npos : next - pos - 2);
        const auto colon = line.find(':');
        if (colon != std::string_view::npos) {
          std::string name(line.substr(0, colon));
          for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          auto value = line.substr(colon + 1);
          while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
          h.headers[name] = std::string(value);
          if (name == "content-length") std::from_chars(value.data(), value.data() + value.size(), length);
        }
        pos = next;
      }
      while (buf.size() < end + 4 + length) {
        if (!read_more(c, buf)) return (void)::close(c);
      }
      h.body = buf.substr(end + 4, length);
      buf.erase(0, end + 4 + length);
      const int busy = ++m_busy;
      for (int m = m_max_busy; busy > m && !m_max_busy.compare_exchange_weak(m, busy);) {
      }
      Reply r = m_script(h);
      {
        std::lock_guard lock(m_mu);
        m_hits.push_back(h);
      }
      if (r.hang) {
        std::string sink;
        while (read_more(c, sink)) {
        }
        --m_busy;
        return (void)::close(c);
      }
      std::this_thread::sleep_for(r.delay);
      const std::string resp =
          "HTTP/1.1 " + std::to_string(r.status) + " X\r\n" + r.extra_headers + "Content-Length: 0\r\n\r\n";
      --m_busy;
      if (::send(c, resp.data(), resp.size(), MSG_NOSIGNAL) <= 0) return (void)::close(c);
    }
  }

  Script m_script;
  int m_fd = -1;
  int m_port = 0;
  std::atomic<bool> m_stop{false};
  std::atomic<int> m_busy{0};
  std::atomic<int> m_max_busy{0};
  std::thread m_accept;
  std::vector<std::thread> m_conns;
  std::mutex m_mu;
  std::vector<Hit> m_hits;
};

}  // namespace rill::e2e::http
