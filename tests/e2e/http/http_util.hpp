// Helpers for the http end-to-end tests: raw HTTP over plain sockets (so malformed bytes
// reach the server exactly as written), a `rill serve` launcher, curl and openssl runs.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "../process.hpp"

namespace rill::e2e::http {

/// What a raw exchange saw: the first response's status, everything read, and whether
/// the server closed the connection (EOF) before the deadline.
struct RawReply {
  int status = 0;
  bool closed = false;
  std::string bytes;
};

/// A connected TCP socket to 127.0.0.1:port (closed on destruction).
class Conn {
 public:
  explicit Conn(int port);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  /// Sends all of `bytes`; false when the peer is gone.
  bool send(std::string_view bytes);
  /// Reads one response (status line, headers, Content-Length body) within `timeout`.
  RawReply read_response(std::chrono::milliseconds timeout);
  /// Waits for EOF (true) or `timeout` (false), discarding what arrives.
  bool wait_closed(std::chrono::milliseconds timeout);
  [[nodiscard]] int fd() const noexcept { return m_fd; }

 private:
  int m_fd = -1;
  std::string m_pending;  // read past the previous response
};

/// Sends `request` on a fresh connection; reads one response, then (when `wait_close`)
/// waits for the server to close the connection.
RawReply raw_exchange(int port, std::string_view request, std::chrono::milliseconds timeout = std::chrono::seconds(5),
                      bool wait_close = true);

/// GET `path`; the body of a 200 (empty string otherwise).
std::string get(int port, std::string_view path);

/// `rill serve` on fresh ports (publish_port .. publish_port + 3 free, for up to four
/// topics), ready once it printed its listening line.
struct Serve {
  Serve(const TempDir& dir, std::vector<std::string> extra, std::string name = "serve");
  int http_port = 0;
  int publish_port = 0;
  std::unique_ptr<Process> proc;
  [[nodiscard]] std::string url(std::string_view path) const;
  /// Waits until /metrics shows `n` subscribers on `topic`.
  bool wait_subscribers(std::string_view topic, int n, std::chrono::milliseconds timeout) const;
  /// The value of one /metrics sample line (e.g. `rill_http_published_total`), -1 if absent.
  [[nodiscard]] double metric(std::string_view sample) const;
};

/// Runs a command (args[0] is a path) to completion; returns its stdout (trimmed of a final newline).
std::string run(const TempDir& dir, const std::string& name, std::vector<std::string> args);
/// Runs `sh -c script`; returns its stdout.
std::string shell(const TempDir& dir, const std::string& name, const std::string& script);
/// Hex of bytes.
std::string hex(std::string_view bytes);
/// Writes `bytes` to `path`.
void write_file(const std::filesystem::path& path, std::string_view bytes);

}  // namespace rill::e2e::http
