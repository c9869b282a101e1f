#include "http_server.hpp"

#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/beast/core/string.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "base/logging.hpp"

namespace rill::http {

namespace {

using Clock = std::chrono::steady_clock;

enum class Op : std::uint8_t { accept = 1, recv = 2, send = 3 };

// Connection phases; each but `responding` has its own timeout list.
enum class Phase : std::uint8_t { header, body, idle, responding, draining };
enum TimerKind : int { t_header, t_body, t_idle, t_write, t_linger, t_count };

// One TLS record's worth of socket bytes per receive.
constexpr std::size_t raw_bytes = 17 * 1024;

std::uint64_t pack(Op op, std::uint32_t gen, std::uint32_t idx) {
  return (static_cast<std::uint64_t>(op) << 56) | (static_cast<std::uint64_t>(gen & 0xffffff) << 32) | idx;
}

}  // namespace

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Status";
  }
}

struct Conn {
  explicit Conn(const RequestLimits& limits, std::size_t cap) : reader(limits), buf(new char[cap]), cap(cap) {}

  int fd = -1;
  std::uint32_t gen = 0;
  Phase phase = Phase::header;
  RequestReader reader;
  std::unique_ptr<char[]> buf;
  std::size_t cap;
  std::size_t begin = 0;  // first unconsumed byte
  std::size_t len = 0;    // bytes held
  std::string out;
  std::size_t out_off = 0;
  bool recv_inflight = false;
  bool send_inflight = false;
  bool header_seen = false;
  bool close_after = false;  // the response being written is the last
  bool dead = false;         // shut down; released once no operation is in flight
  // HTTPS: the session, the socket bytes read (records) and to write (records); `out` and
  // `buf` then hold plaintext.
  std::unique_ptr<TlsSession> tls;
  std::unique_ptr<char[]> raw;
  std::string wire;
  std::size_t wire_off = 0;
  bool tls_close = false;   // close once `wire` is out (a failed handshake's alert)
  bool tls_notified = false;  // close_notify is queued
  bool tls_more = false;      // the last decrypt filled `buf`: TLS may hold more plaintext
  // Timer: one list per kind, each FIFO because its timeout is fixed.
  int timer = -1;
  int prev = -1;
  int next = -1;
  Clock::time_point deadline{};
};

struct Server::Impl {
  ServerOptions opt;
  RequestHandler* handler = nullptr;
  ServerStats stats;
  io_uring ring{};
  bool ring_ok = false;
  int listen_fd = -1;
  std::uint16_t port = 0;
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<std::uint32_t> free_slots;
  struct List {
    int head = -1;
    int tail = -1;
  };
  std::array<List, t_count> lists;
  std::array<std::chrono::milliseconds, t_count> durations{};
  bool accept_armed = false;
  bool accept_error_logged = false;
  Clock::time_point accept_retry_at{};
  Clock::time_point now = Clock::now();

  ~Impl() {
    for (auto& c : conns) {
      if (c && c->fd >= 0) ::close(c->fd);
    }
    if (listen_fd >= 0) ::close(listen_fd);
    if (ring_ok) io_uring_queue_exit(&ring);
  }

  io_uring_sqe* sqe() {
    auto* s = io_uring_get_sqe(&ring);
    if (s == nullptr) {
      io_uring_submit(&ring);  // the queue is full: hand it to the kernel, then there is room
      s = io_uring_get_sqe(&ring);
    }
    return s;
  }

  // --- timers -----------------------------------------------------------------
  void unlink_timer(std::uint32_t idx) {
    Conn& c = *conns[idx];
    if (c.timer < 0) return;
    List& l = lists[c.timer];
    (c.prev >= 0 ? conns[c.prev]->next : l.head) = c.next;
    (c.next >= 0 ? conns[c.next]->prev : l.tail) = c.prev;
    c.timer = c.prev = c.next = -1;
  }
  void set_timer(std::uint32_t idx, int kind) {
    unlink_timer(idx);
    Conn& c = *conns[idx];
    List& l = lists[kind];
    c.timer = kind;
    c.deadline = now + durations[kind];
    c.prev = l.tail;
    c.next = -1;
    (l.tail >= 0 ? conns[l.tail]->next : l.head) = static_cast<int>(idx);
    l.tail = static_cast<int>(idx);
  }
  Clock::time_point next_deadline() const {
    auto best = now + std::chrono::milliseconds(50);
    for (const auto& l : lists) {
      if (l.head >= 0) best = std::min(best, conns[l.head]->deadline);
    }
    return best;
  }
  void expire_timers() {
    for (int kind = 0; kind < t_count; ++kind) {
      while (lists[kind].head >= 0 && conns[lists[kind].head]->deadline <= now) {
        const auto idx = static_cast<std::uint32_t>(lists[kind].head);
        unlink_timer(idx);
        on_timeout(idx, kind);
      }
    }
  }
  void on_timeout(std::uint32_t idx, int kind) {
    switch (kind) {
      case t_header:
        ++stats.header_timeouts;
        respond_error(idx, 408, "request header not received in time");
        break;
      case t_body:
        ++stats.body_timeouts;
        respond_error(idx, 408, "request body not received in time");
        break;
      case t_idle:
        ++stats.idle_timeouts;
        kill(idx);
        break;
      case t_write:
        ++stats.write_timeouts;
        kill(idx);
        break;
      default:
        kill(idx);  // linger over
        break;
    }
  }

  // --- connections ------------------------------------------------------------
  void on_accept(int res, bool more) {
    if (!more) accept_armed = false;
    if (res < 0) {
      accept_retry_at = now + std::chrono::milliseconds(100);  // e.g. EMFILE: do not spin on it
      if (!accept_error_logged) {
        detail::log().warn("http: accept failed: {}", std::strerror(-res));
        accept_error_logged = true;
      }
      return;
    }
    if (stats.open >= opt.max_connections) {
      ++stats.refused;
      ::close(res);
      return;
    }
    const int one = 1;
    ::setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::uint32_t idx;
    if (!free_slots.empty()) {
      idx = free_slots.back();
      free_slots.pop_back();
    } else {
      idx = static_cast<std::uint32_t>(conns.size());
      conns.push_back(std::make_unique<Conn>(opt.limits, std::max<std::size_t>(16384, opt.limits.header_bytes + 4096)));
    }
    Conn& c = *conns[idx];
    c.fd = res;
    ++c.gen;
    c.phase = Phase::header;
    c.reader.reset();
    c.begin = c.len = c.out_off = 0;
    c.out.clear();
    c.recv_inflight = c.send_inflight = c.header_seen = c.close_after = c.dead = false;
    c.wire.clear();
    c.wire_off = 0;
    c.tls_close = c.tls_notified = c.tls_more = false;
    if (opt.tls) {
      c.tls = std::make_unique<TlsSession>(*opt.tls);
      if (!c.raw) c.raw.reset(new char[raw_bytes]);
    } else {
      c.tls.reset();
    }
    ++stats.accepted;
    ++stats.open;
    set_timer(idx, t_header);  // a connection that never sends is a slow header
    post_recv(idx);
  }

  void arm_accept() {
    if (accept_armed || now < accept_retry_at) return;
    auto* s = sqe();
    io_uring_prep_multishot_accept(s, listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, pack(Op::accept, 0, 0));
    accept_armed = true;
  }

  void post_recv(std::uint32_t idx) {
    Conn& c = *conns[idx];
    if (c.recv_inflight || c.dead) return;
    if (c.phase == Phase::draining) c.begin = c.len = 0;  // discarded
    if (c.len == c.cap) {
      respond_error(idx, c.reader.header_done() ? 400 : 431, "request does not fit the read buffer");
      return;
    }
    // Records already received may hold more plaintext than the last read took.
    if (c.tls && c.phase != Phase::draining && c.tls_more) return on_tls_input(idx);
    auto* s = sqe();
    if (c.tls) {
      io_uring_prep_recv(s, c.fd, c.raw.get(), raw_bytes, 0);
    } else {
      io_uring_prep_recv(s, c.fd, c.buf.get() + c.len, c.cap - c.len, 0);
    }
    io_uring_sqe_set_data64(s, pack(Op::recv, c.gen, idx));
    c.recv_inflight = true;
  }

  // HTTPS: encrypts the plaintext not yet encrypted (and close_notify after a last response).
  void seal(Conn& c) {
    if (c.out_off < c.out.size()) {
      if (c.tls->write({c.out.data() + c.out_off, c.out.size() - c.out_off}) != TlsSession::Status::ok) c.tls_close = true;
      c.out_off = c.out.size();
    }
    if (c.close_after && c.phase == Phase::responding && !c.tls_notified) {
      c.tls_notified = true;
      c.tls->close_notify();
    }
    c.tls->take_output(c.wire);
  }

  void post_send(std::uint32_t idx) {
    Conn& c = *conns[idx];
    if (c.tls && !c.send_inflight && !c.dead) {
      seal(c);
      if (c.wire_off >= c.wire.size()) {
        if (c.tls_close) kill(idx);  // nothing left to say on a broken session
        return;
      }
      auto* s = sqe();
      io_uring_prep_send(s, c.fd, c.wire.data() + c.wire_off, c.wire.size() - c.wire_off, MSG_NOSIGNAL);
      io_uring_sqe_set_data64(s, pack(Op::send, c.gen, idx));
      c.send_inflight = true;
      return;
    }
    if (c.send_inflight || c.dead || c.out_off >= c.out.size()) return;
    auto* s = sqe();
    io_uring_prep_send(s, c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, pack(Op::send, c.gen, idx));
    c.send_inflight = true;
  }

  // Shuts the socket so in-flight operations finish; the slot is freed when they have.
  void kill(std::uint32_t idx) {
    Conn& c = *conns[idx];
    unlink_timer(idx);
    if (!c.dead) {
      c.dead = true;
      ::shutdown(c.fd, SHUT_RDWR);
    }
    maybe_release(idx);
  }
  void maybe_release(std::uint32_t idx) {
    Conn& c = *conns[idx];
    if (!c.dead || c.recv_inflight || c.send_inflight) return;
    ::close(c.fd);
    c.fd = -1;
    ++c.gen;
    --stats.open;
    c.out.clear();
    c.out.shrink_to_fit();
    free_slots.push_back(idx);
  }

  void append_response(Conn& c, const Response& r, bool close) {
    ++stats.requests;
    if (r.status >= 0 && r.status < static_cast<int>(stats.by_status.size())) ++stats.by_status[r.status];
    const auto phrase = reason_phrase(r.status);
    auto& o = c.out;
    o += "HTTP/1.1 ";
    o += std::to_string(r.status);
    o += ' ';
    o.append(phrase);
    o += "\r\nContent-Length: ";
    o += std::to_string(r.body.size());
    if (!r.body.empty()) {
      o += "\r\nContent-Type: ";
      o.append(r.content_type);
    }
    if (r.retry_after_s > 0) {
      o += "\r\nRetry-After: ";
      o += std::to_string(r.retry_after_s);
    }
    if (!r.allow.empty()) {
      o += "\r\nAllow: ";
      o.append(r.allow);
    }
    if (close) o += "\r\nConnection: close";
    o += "\r\n\r\n";
    o.append(r.body);
  }

  void respond(std::uint32_t idx, const Response& r, bool close) {
    Conn& c = *conns[idx];
    append_response(c, r, close);
    c.close_after = close;
    c.phase = Phase::responding;
    set_timer(idx, t_write);
    post_send(idx);
  }

  void respond_error(std::uint32_t idx, int status, std::string_view reason) {
    if (conns[idx]->dead || conns[idx]->phase == Phase::draining) return;
    // No HTTP answer can be sent before the TLS handshake is done (a stalled one): just close.
    if (conns[idx]->tls && !conns[idx]->tls->handshake_done()) return kill(idx);
    if (conns[idx]->phase == Phase::responding) {  // a response is already going out: just end it
      conns[idx]->close_after = true;
      return;
    }
    std::string body(reason);
    body += '\n';
    respond(idx, Response{.status = status, .body = body}, true);
  }

  // Parses what is buffered; answers, or asks for more bytes.
  void process(std::uint32_t idx) {
    Conn& c = *conns[idx];
    if (c.phase == Phase::idle) {
      c.phase = Phase::header;
      set_timer(idx, t_header);
    }
    while (c.phase == Phase::header || c.phase == Phase::body) {
      const auto n = c.reader.feed(std::span<const char>(c.buf.get() + c.begin, c.len - c.begin));
      c.begin += n;
      if (const auto& e = c.reader.error()) {
        respond_error(idx, e->status, e->reason);
        return;
      }
      if (c.reader.header_done() && !c.header_seen) {
        c.header_seen = true;
        auto& req = c.reader.request();
        if (auto early = handler->on_header(req)) {
          respond(idx, *early, early->close || c.reader.expects_body() || !req.keep_alive());
          return;
        }
        if (c.reader.expects_body()) {
          c.phase = Phase::body;
          set_timer(idx, t_body);
          const auto expect = req[boost::beast::http::field::expect];
          if (boost::beast::iequals(expect, "100-continue") && req.version() == 11) {
            c.out += "HTTP/1.1 100 Continue\r\n\r\n";
            post_send(idx);
          }
        }
      }
      if (c.reader.done()) {
        const auto& req = c.reader.request();
        const auto r = handler->on_request(req);
        respond(idx, r, r.close || !req.keep_alive());
        return;
      }
      if (n == 0) break;
    }
    if (c.begin > 0) {
      std::memmove(c.buf.get(), c.buf.get() + c.begin, c.len - c.begin);
      c.len -= c.begin;
      c.begin = 0;
    }
    post_recv(idx);
  }

  void on_recv(std::uint32_t idx, int res) {
    Conn& c = *conns[idx];
    c.recv_inflight = false;
    if (c.dead) return maybe_release(idx);
    if (res <= 0) return kill(idx);  // peer closed or reset: nothing to answer
    stats.bytes_in += static_cast<std::uint64_t>(res);
    if (c.phase == Phase::draining) return post_recv(idx);
    if (c.tls) {
      c.tls->feed({c.raw.get(), static_cast<std::size_t>(res)});
      return on_tls_input(idx);
    }
    c.len += static_cast<std::size_t>(res);
    if (c.phase == Phase::responding) return;  // pipelined bytes wait for the response
    process(idx);
  }

  // HTTPS: records arrived (or were left over): handshake, decrypt into `buf`, answer.
  void on_tls_input(std::uint32_t idx) {
    Conn& c = *conns[idx];
    const bool was_done = c.tls->handshake_done();
    std::size_t n = 0;
    const std::size_t room = c.cap - c.len;
    const auto status = c.tls->read({c.buf.get() + c.len, room}, n);
    c.tls_more = room > 0 && n == room;
    if (!was_done && c.tls->handshake_done()) ++stats.tls_handshakes;
    c.len += n;
    if (status == TlsSession::Status::failed) {
      if (!was_done) ++stats.tls_failures;
      // The alert OpenSSL wrote (if any) goes out, then the connection closes.
      c.tls_close = true;
      unlink_timer(idx);
      c.tls->take_output(c.wire);
      if (c.wire_off >= c.wire.size()) return kill(idx);
      set_timer(idx, t_write);
      return post_send(idx);
    }
    if (status == TlsSession::Status::closed) return kill(idx);
    post_send(idx);  // handshake records, if any
    if (c.phase == Phase::responding) return;  // pipelined bytes wait for the response
    if (n == 0) return post_recv(idx);
    process(idx);
  }

  void on_send(std::uint32_t idx, int res) {
    Conn& c = *conns[idx];
    c.send_inflight = false;
    if (c.dead) return maybe_release(idx);
    if (res <= 0) return kill(idx);
    stats.bytes_out += static_cast<std::uint64_t>(res);
    if (c.tls) {
      c.wire_off += static_cast<std::size_t>(res);
      if (c.wire_off < c.wire.size()) return post_send(idx);
      c.wire.clear();
      c.wire_off = 0;
      if (c.tls_close) return kill(idx);
      if (c.out_off < c.out.size()) return post_send(idx);  // more was added while this was out
    }
    c.out_off += c.tls ? 0 : static_cast<std::size_t>(res);
    if (c.out_off < c.out.size()) return post_send(idx);
    c.out.clear();
    c.out_off = 0;
    if (c.phase != Phase::responding) return;  // that was a 100 Continue
    if (c.close_after) {
      // Half-close and read what the peer still sends, so our response is not lost to a reset.
      ::shutdown(c.fd, SHUT_WR);
      c.phase = Phase::draining;
      set_timer(idx, t_linger);
      return post_recv(idx);
    }
    c.reader.reset();
    c.header_seen = false;
    c.phase = Phase::idle;
    set_timer(idx, t_idle);
    if (c.len > c.begin) return process(idx);  // a pipelined request is already here
    post_recv(idx);
  }

  void on_cqe(const io_uring_cqe* cqe) {
    const auto data = io_uring_cqe_get_data64(cqe);
    const auto op = static_cast<Op>(data >> 56);
    if (op == Op::accept) return on_accept(cqe->res, (cqe->flags & IORING_CQE_F_MORE) != 0);
    const auto idx = static_cast<std::uint32_t>(data & 0xffffffff);
    const auto gen = static_cast<std::uint32_t>((data >> 32) & 0xffffff);
    if (idx >= conns.size() || (conns[idx]->gen & 0xffffff) != gen) return;  // cannot happen: ops pin their slot
    if (op == Op::recv) on_recv(idx, cqe->res);
    if (op == Op::send) on_send(idx, cqe->res);
  }
};

Server::Server(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::create(const ServerOptions& options, RequestHandler& handler) {
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  impl->handler = &handler;
  impl->durations = {options.header_timeout, options.body_timeout, options.idle_timeout, options.write_timeout,
                     options.linger};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(options.port);
  if (::inet_pton(AF_INET, options.host.c_str(), &addr.sin_addr) != 1) {
    return fail(Errc::invalid_argument, "http: '" + options.host + "' is not an IPv4 address");
  }
  impl->listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (impl->listen_fd < 0) return fail(Errc::io_error, "http: socket", errno);
  const int one = 1;
  ::setsockopt(impl->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // A previous instance that just died (kill -9, then a restart) can hold the port a little
  // longer: the kernel tears its io_uring ring, and the sockets in it, down asynchronously,
  // after the process is gone. So a busy port is retried for a short while.
  const auto bind_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (::bind(impl->listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    if (e == EADDRINUSE && std::chrono::steady_clock::now() < bind_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    return fail(e == EADDRINUSE ? Errc::address_in_use : Errc::io_error,
                "http: bind " + options.host + ":" + std::to_string(options.port), e);
  }
  if (::listen(impl->listen_fd, 4096) != 0) return fail(Errc::io_error, "http: listen", errno);
  socklen_t len = sizeof addr;
  ::getsockname(impl->listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  impl->port = ntohs(addr.sin_port);
  if (const int r = io_uring_queue_init(options.ring_entries, &impl->ring, 0); r < 0) {
    return fail(Errc::io_error, "http: io_uring_queue_init", -r);
  }
  impl->ring_ok = true;
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Result<void> Server::run(const std::function<bool()>& stopping) {
  auto& s = *m_impl;
  while (!stopping()) {
    s.now = Clock::now();
    s.expire_timers();
    s.handler->on_tick(s.now);
    s.arm_accept();
    const auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(s.next_deadline() - s.now);
    __kernel_timespec ts{.tv_sec = 0, .tv_nsec = std::max<long long>(wait.count(), 0)};
    ts.tv_sec = ts.tv_nsec / 1'000'000'000;
    ts.tv_nsec %= 1'000'000'000;
    io_uring_cqe* cqe = nullptr;
    const int r = io_uring_submit_and_wait_timeout(&s.ring, &cqe, 1, &ts, nullptr);
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY) return fail(Errc::io_error, "http: io_uring wait", -r);
    s.now = Clock::now();
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(&s.ring, head, cqe) {
      s.on_cqe(cqe);
      ++seen;
    }
    io_uring_cq_advance(&s.ring, seen);
  }
  return {};
}

std::uint16_t Server::port() const noexcept {
  return m_impl->port;
}
const ServerStats& Server::stats() const noexcept {
  return m_impl->stats;
}
void Server::set_tls(std::shared_ptr<TlsContext> tls) {
  m_impl->opt.tls = std::move(tls);
}

}  // namespace rill::http
