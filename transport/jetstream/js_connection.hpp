// One NATS connection with its JetStream context, shared by the publisher and the
// subscriber sides of the jetstream transport: connecting to a server list with
// reconnects, and creating the stream when it is missing.
#pragma once

#include <nats/nats.h>

#include <memory>
#include <string>

#include "js_options.hpp"

namespace rill::detail::js {

/// A connected client. Owned by one transport object; the nats.c objects inside are
/// thread-safe (nats.c runs its own I/O thread), this wrapper adds no state of its own.
class JsConnection {
 public:
  /// Connects to the first reachable server of `o.servers` (reconnecting later to any
  /// of them, and to servers the cluster announces); not_connected when none answers.
  /// `ctx` fills the JetStream context options (the publisher's async ack handler).
  [[nodiscard]] static Result<std::unique_ptr<JsConnection>> connect(const JsOptions& o,
                                                                     const jsOptions* ctx = nullptr);
  ~JsConnection();
  JsConnection(const JsConnection&) = delete;
  JsConnection& operator=(const JsConnection&) = delete;

  /// Makes sure the stream exists with the subjects "rill.<STREAM>.>" (created with the
  /// endpoint's replicas, storage and max_bytes when missing; an existing stream is used
  /// as it is, and one that does not carry those subjects is an incompatible error).
  [[nodiscard]] Result<void> ensure_stream(const JsOptions& o);

  [[nodiscard]] natsConnection* nc() const noexcept { return m_nc; }
  [[nodiscard]] jsCtx* js() const noexcept { return m_js; }

 private:
  JsConnection() = default;
  // One lookup (and creation when missing); `s` is the last status from the server.
  Result<void> ensure_stream_once(const JsOptions& o, natsStatus& s);
  natsConnection* m_nc = nullptr;
  jsCtx* m_js = nullptr;
};

/// "<what>: <nats status text> (<last error>)" as an Error with `code`.
[[nodiscard]] Error nats_error(Errc code, const std::string& what, natsStatus s, jsErrCode js_code = jsErrCode(0));

}  // namespace rill::detail::js
