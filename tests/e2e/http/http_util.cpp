#include "http_util.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <stdexcept>
#include <system_error>

namespace rill::e2e::http {

using Clock = std::chrono::steady_clock;

Conn::Conn(int port) {
  m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (m_fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    ::close(m_fd);
    throw std::system_error(e, std::generic_category(), "connect 127.0.0.1:" + std::to_string(port));
  }
  const int one = 1;
  ::setsockopt(m_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Conn::~Conn() {
  if (m_fd >= 0) ::close(m_fd);
}

bool Conn::send(std::string_view bytes) {
  while (!bytes.empty()) {
    const auto n = ::send(m_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

namespace {

// Reads into `buf` until `done(buf)` or EOF or the deadline; returns false on EOF.
template <class Done>
bool read_until(int fd, std::string& buf, Clock::time_point deadline, Done done, bool& eof) {
  char chunk[16384];
  while (!done(buf)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const auto n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) {
      eof = true;
      return false;
    }
    buf.append(chunk, static_cast<std::size_t>(n));
  }
  return true;
}

// Length of the first complete response in `b` (0: not complete yet).
std::size_t response_length(std::string_view b) {
  const auto end = b.find("\r\n\r\n");
  if (end == std::string_view::npos) return 0;
  std::size_t body = 0;
  auto head = b.substr(0, end);
  for (std::size_t pos = 0; pos < head.size();) {
    auto nl = head.find("\r\n", pos);
    auto line = head.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    if (line.size() > 15 && (line.starts_with("Content-Length:") || line.starts_with("content-length:"))) {
      auto v = line.substr(15);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      std::from_chars(v.data(), v.data() + v.size(), body);
    }
    if (nl == std::string_view::npos) break;
    pos = nl + 2;
  }
  const auto total = end + 4 + body;
  return b.size() >= total ? total : 0;
}

}  // namespace

RawReply Conn::read_response(std::chrono::milliseconds timeout) {
  RawReply r;
  std::string buf = std::move(m_pending);
  m_pending.clear();
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    bool eof = false;
    read_until(
        m_fd, buf, deadline, [](const std::string& b) { return response_length(b) > 0; }, eof);
    const auto len = response_length(buf);
    if (len == 0) {
      r.closed = eof;
      r.bytes = buf;
      break;
    }
    r.bytes = buf.substr(0, len);
    m_pending = buf.substr(len);
    if (r.bytes.starts_with("HTTP/1.1 100 ")) {  // interim: the final response follows
      buf = std::move(m_pending);
      m_pending.clear();
      continue;
    }
    break;
  }
  if (r.bytes.size() >= 12 && r.bytes.starts_with("HTTP/1.")) {
    std::from_chars(r.bytes.data() + 9, r.bytes.data() + 12, r.status);
  }
  return r;
}

bool Conn::wait_closed(std::chrono::milliseconds timeout) {
  bool eof = false;
  std::string sink;
  read_until(
      m_fd, sink, Clock::now() + timeout, [](const std::string&) { return false; }, eof);
  return eof;
}

RawReply raw_exchange(int port, std::string_view request, std::chrono::milliseconds timeout, bool wait_close) {
  Conn c(port);
  c.send(request);  // the server may close before taking it all: the reply says what happened
  auto r = c.read_response(timeout);
  if (!r.closed && wait_close) r.closed = c.wait_closed(timeout);
  return r;
}

std::string get(int port, std::string_view path) {
  Conn c(port);
  c.send("GET " + std::string(path) + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  const auto r = c.read_response(std::chrono::seconds(5));
  if (r.status != 200) return {};
  const auto end = r.bytes.find("\r\n\r\n");
  return r.bytes.substr(end + 4);
}

Serve::Serve(const TempDir& dir, std::vector<std::string> extra, std::string name) {
  http_port = free_port();
  // Topics are published on consecutive ports from publish_port: find a few free in a row.
  for (int attempt = 0; attempt < 100; ++attempt) {
    publish_port = free_port();
    bool all_free = publish_port + 3 < 65536;
    for (int k = 1; k < 4 && all_free; ++k) {
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<std::uint16_t>(publish_port + k));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      all_free = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(fd);
    }
    if (all_free && publish_port != http_port && publish_port + 3 != http_port &&
        !(http_port > publish_port && http_port <= publish_port + 3))
      break;
  }
  std::vector<std::string> args = {"serve", "--http", "127.0.0.1:" + std::to_string(http_port), "--publish",
                                   tcp_endpoint(publish_port)};
  args.insert(args.end(), extra.begin(), extra.end());
  proc = spawn_rill(dir, name, args);
  if (!wait_until([&] { return proc->err().find("listening on") != std::string::npos || !proc->running(); },
                  std::chrono::seconds(10)) ||
      !proc->running()) {
    throw std::runtime_error("rill serve did not start: " + proc->err());
  }
}

std::string Serve::url(std::string_view path) const {
  return "http://127.0.0.1:" + std::to_string(http_port) + std::string(path);
}

double Serve::metric(std::string_view sample) const {
  const auto text = get(http_port, "/metrics");
  for (const auto line : lines(text)) {
    if (line.size() > sample.size() && line.starts_with(sample) && line[sample.size()] == ' ') {
      return std::stod(std::string(line.substr(sample.size() + 1)));
    }
  }
  return -1;
}

bool Serve::wait_subscribers(std::string_view topic, int n, std::chrono::milliseconds timeout) const {
  const auto sample = "rill_topic_subscribers{topic=\"" + std::string(topic) + "\"}";
  return wait_until([&] { return metric(sample) >= n; }, timeout);
}

std::string run(const TempDir& dir, const std::string& name, std::vector<std::string> args) {
  Process p(std::move(args), dir.path(), name);
  const auto e = p.wait(std::chrono::seconds(60));
  if (!e.ok()) throw std::runtime_error(p.command_line() + ": " + e.describe() + ": " + p.err());
  auto out = p.out();
  if (out.ends_with('\n')) out.pop_back();
  return out;
}

std::string shell(const TempDir& dir, const std::string& name, const std::string& script) {
  return run(dir, name, {"/bin/sh", "-c", script});
}

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    out += digits[static_cast<unsigned char>(c) >> 4];
    out += digits[static_cast<unsigned char>(c) & 15];
  }
  return out;
}

void write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace rill::e2e::http
