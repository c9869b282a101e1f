// TLS for the ingress server (OpenSSL): a server context loaded from PEM files, and one
// session per connection that reads and writes through memory BIOs, so io_uring keeps doing
// the socket I/O and OpenSSL only turns bytes into bytes.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "rill/error.hpp"

using SSL = struct ssl_st;
using SSL_CTX = struct ssl_ctx_st;

namespace rill::http {

/// A server certificate chain and key, TLS 1.2 and 1.3 with forward-secret AEAD ciphers
/// only. Immutable once loaded; a reload makes a new one (sessions keep theirs).
class TlsContext {
 public:
  /// Reads `cert_file` (PEM chain, leaf first) and `key_file` (PEM private key) and checks
  /// that they belong together.
  [[nodiscard]] static Result<std::shared_ptr<TlsContext>> load(const std::string& cert_file, const std::string& key_file);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  [[nodiscard]] SSL_CTX* native() const noexcept { return m_ctx; }

 private:
  explicit TlsContext(SSL_CTX* ctx) : m_ctx(ctx) {}
  SSL_CTX* m_ctx;
};

/// One connection's TLS state. Not thread-safe (the server thread).
class TlsSession {
 public:
  explicit TlsSession(const TlsContext& ctx);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  enum class Status { ok, closed, failed };

  /// Hands bytes received from the socket to TLS.
  void feed(std::span<const char> wire);
  /// Runs the handshake as far as the bytes allow, then decrypts into `out`; returns the
  /// plaintext bytes written in `n`. closed: the peer sent close_notify; failed: a
  /// handshake or record error (reason() says which).
  Status read(std::span<char> out, std::size_t& n);
  /// Encrypts `plain` (all of it: the output BIO grows as needed).
  Status write(std::span<const char> plain);
  /// Queues a close_notify alert (the last record before the server closes).
  void close_notify();
  /// Moves the TLS records waiting to be sent onto the end of `wire`.
  void take_output(std::string& wire);
  [[nodiscard]] bool handshake_done() const;
  [[nodiscard]] const std::string& reason() const noexcept { return m_reason; }

 private:
  Status fail_with(int ret);
  SSL* m_ssl;
  std::string m_reason;
};

}  // namespace rill::http
