// A small HTTP/1.1 server on io_uring: accept, recv and send through one ring, many
// keep-alive connections on one thread, requests parsed by RequestReader (Beast).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "request_reader.hpp"
#include "rill/error.hpp"
#include "tls.hpp"

namespace rill::http {

/// Where and how the server listens; fill with designated initializers.
struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  ///< 0: any free port (read it back with port())
  RequestLimits limits{};
  std::chrono::milliseconds header_timeout{10'000};  ///< from a request's first byte to its full header
  std::chrono::milliseconds body_timeout{30'000};    ///< from the full header to the full body
  std::chrono::milliseconds idle_timeout{60'000};    ///< keep-alive connection with no request
  std::chrono::milliseconds write_timeout{30'000};   ///< a response the peer does not read
  std::chrono::milliseconds linger{2'000};           ///< reading (and discarding) after a final response
  std::size_t max_connections = 4096;                ///< more are accepted and closed at once
  unsigned ring_entries = 4096;
  /// Set: HTTPS only (every connection starts with a TLS handshake, inside header_timeout).
  std::shared_ptr<TlsContext> tls{};
};

/// One response; the bytes are copied into the connection's output before handle returns.
struct Response {
  int status = 200;
  std::string_view body{};
  std::string_view content_type = "text/plain";
  int retry_after_s = 0;     ///< > 0: a Retry-After header
  std::string_view allow{};  ///< non-empty: an Allow header (405)
  bool close = false;        ///< close the connection after this response
};

/// What the server counts; read on the server thread (or after run() returned).
struct ServerStats {
  std::uint64_t accepted = 0;
  std::uint64_t refused = 0;  ///< over max_connections
  std::uint64_t open = 0;
  std::uint64_t requests = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t header_timeouts = 0;
  std::uint64_t body_timeouts = 0;
  std::uint64_t idle_timeouts = 0;
  std::uint64_t write_timeouts = 0;
  std::uint64_t tls_handshakes = 0;  ///< TLS handshakes completed
  std::uint64_t tls_failures = 0;    ///< connections closed for a failed handshake (plain HTTP, old TLS, bad records)
  std::array<std::uint64_t, 600> by_status{};  ///< responses sent, by status code
};

/// The application behind the server. Called on the server thread only.
class RequestHandler {
 public:
  /// The header is complete and sane; answer now (the body is not read; the connection
  /// closes when one was coming) or return nullopt to read the body.
  virtual std::optional<Response> on_header(const Request& req) = 0;
  /// The whole request is here.
  virtual Response on_request(const Request& req) = 0;
  /// Called at least every few tens of milliseconds (housekeeping such as publisher service).
  virtual void on_tick(std::chrono::steady_clock::time_point now) = 0;

 protected:
  ~RequestHandler() = default;
};

/// The server. Not thread-safe: create, then run() on one thread.
class Server {
 public:
  /// Binds and listens; the ring is set up here so errors surface before run().
  [[nodiscard]] static Result<std::unique_ptr<Server>> create(const ServerOptions& options, RequestHandler& handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Serves until `stopping()` returns true (checked at least every 50 ms).
  [[nodiscard]] Result<void> run(const std::function<bool()>& stopping);
  [[nodiscard]] std::uint16_t port() const noexcept;
  [[nodiscard]] const ServerStats& stats() const noexcept;
  /// New connections use `tls` from now on (a certificate reload); open ones keep theirs.
  /// Only on an HTTPS server, from the server thread (e.g. in `stopping`).
  void set_tls(std::shared_ptr<TlsContext> tls);

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

/// The standard reason phrase of `status` ("Accepted" for 202).
[[nodiscard]] std::string_view reason_phrase(int status) noexcept;

}  // namespace rill::http
