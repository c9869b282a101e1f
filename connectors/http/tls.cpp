#include "tls.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace rill::http {

namespace {

// TLS 1.2: ECDHE key exchange with AES-GCM or ChaCha20-Poly1305 only (forward secrecy, AEAD).
// TLS 1.3 suites are all AEAD; OpenSSL's default list is kept.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string openssl_error(std::string_view what) {
  std::string text(what);
  while (const auto e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    text += ": ";
    text += buf;
  }
  return text;
}

}  // namespace

Result<std::shared_ptr<TlsContext>> TlsContext::load(const std::string& cert_file, const std::string& key_file) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return fail(Errc::io_error, openssl_error("tls: SSL_CTX_new"));
  std::shared_ptr<TlsContext> made(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_cipher_list(ctx, tls12_ciphers);
  // No renegotiation (a CPU lever for clients), no compression (CRIME), our cipher order;
  // no session tickets: webhook senders gain little from resumption, and no ticket key needs rotating.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return fail(Errc::invalid_argument, openssl_error("tls: cannot use the certificate file " + cert_file));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return fail(Errc::invalid_argument, openssl_error("tls: cannot use the key file " + key_file));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return fail(Errc::invalid_argument, openssl_error("tls: " + key_file + " is not the key of " + cert_file));
  }
  return made;
}

TlsContext::~TlsContext() {
  SSL_CTX_free(m_ctx);
}

TlsSession::TlsSession(const TlsContext& ctx) : m_ssl(SSL_new(ctx.native())) {
  // The SSL holds its own reference to the context: a reload may drop ours meanwhile.
  SSL_set_bio(m_ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  SSL_set_accept_state(m_ssl);
}

TlsSession::~TlsSession() {
  SSL_free(m_ssl);
}

void TlsSession::feed(std::span<const char> wire) {
  BIO_write(SSL_get_rbio(m_ssl), wire.data(), static_cast<int>(wire.size()));
}

TlsSession::Status TlsSession::fail_with(int ret) {
  const int err = SSL_get_error(m_ssl, ret);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Status::ok;
  if (err == SSL_ERROR_ZERO_RETURN) return Status::closed;
  m_reason = openssl_error(handshake_done() ? "tls record" : "tls handshake");
  ERR_clear_error();
  return Status::failed;
}

TlsSession::Status TlsSession::read(std::span<char> out, std::size_t& n) {
  n = 0;
  ERR_clear_error();
  if (!SSL_is_init_finished(m_ssl)) {
    const int r = SSL_do_handshake(m_ssl);
    if (r != 1) return fail_with(r);
  }
  while (n < out.size()) {
    std::size_t got = 0;
    const int r = SSL_read_ex(m_ssl, out.data() + n, out.size() - n, &got);
    if (r != 1) {
      const auto s = fail_with(r);
      return n > 0 && s == Status::closed ? Status::ok : s;
    }
    n += got;
  }
  return Status::ok;
}

TlsSession::Status TlsSession::write(std::span<const char> plain) {
  ERR_clear_error();
  std::size_t done = 0;
  while (done < plain.size()) {
    std::size_t wrote = 0;
    if (SSL_write_ex(m_ssl, plain.data() + done, plain.size() - done, &wrote) != 1) {
      const auto s = fail_with(0);
      return s == Status::ok ? Status::failed : s;  // a memory BIO never wants more room
    }
    done += wrote;
  }
  return Status::ok;
}

void TlsSession::close_notify() {
  SSL_shutdown(m_ssl);
}

void TlsSession::take_output(std::string& wire) {
  BIO* w = SSL_get_wbio(m_ssl);
  const auto pending = BIO_ctrl_pending(w);
  if (pending == 0) return;
  const auto at = wire.size();
  wire.resize(at + pending);
  const int got = BIO_read(w, wire.data() + at, static_cast<int>(pending));
  wire.resize(at + static_cast<std::size_t>(got > 0 ? got : 0));
}

bool TlsSession::handshake_done() const {
  return SSL_is_init_finished(m_ssl) != 0;
}

}  // namespace rill::http
