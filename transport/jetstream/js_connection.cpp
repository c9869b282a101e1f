#include "js_connection.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "base/logging.hpp"

namespace rill::detail::js {

namespace {

// State changes of the connection are worth one log line each (never per message).
void on_disconnected(natsConnection* nc, void*) {
  if (natsConnection_IsClosed(nc)) return;  // our own close
  log().warn("jetstream: disconnected from the server; reconnecting");
}
void on_reconnected(natsConnection* nc, void*) {
  char url[256] = {};
  natsConnection_GetConnectedUrl(nc, url, sizeof url);
  log().warn("jetstream: reconnected to {}", url);
}
void on_async_error(natsConnection*, natsSubscription*, natsStatus s, void*) {
  log().warn("jetstream: asynchronous error: {}", natsStatus_GetText(s));
}

}  // namespace

Error nats_error(Errc code, const std::string& what, natsStatus s, jsErrCode js_code) {
  std::string detail = what + ": " + natsStatus_GetText(s);
  if (js_code != 0) detail += " (JetStream error " + std::to_string(static_cast<int>(js_code)) + ")";
  if (const char* last = nats_GetLastError(nullptr); last != nullptr && *last != '\0')
    detail += ": " + std::string(last);
  return Error{.code = code, .detail = std::move(detail)};
}

Result<std::unique_ptr<JsConnection>> JsConnection::connect(const JsOptions& o, const jsOptions* ctx) {
  std::unique_ptr<JsConnection> c(new JsConnection());
  natsOptions* opts = nullptr;
  if (natsOptions_Create(&opts) != NATS_OK) return fail(Errc::io_error, "jetstream: cannot create client options");
  std::vector<const char*> urls;
  for (const auto& s : o.servers) urls.push_back(s.c_str());
  natsStatus s = natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size()));
  // Once connected, a lost server is not an error of ours: the client reconnects to
  // another cluster member (forever, 100 ms apart) while publishes wait in its buffer.
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, 100);
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, o.connect_timeout_ms);
  if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, on_disconnected, nullptr);
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, on_reconnected, nullptr);
  if (s == NATS_OK) s = natsOptions_SetErrorHandler(opts, on_async_error, nullptr);
  // TLS: nats.c verifies the server's certificate (and its name) unless told otherwise;
  // rill never tells it otherwise.
  if (s == NATS_OK && o.tls) s = natsOptions_SetSecure(opts, true);
  if (s == NATS_OK && !o.tls_ca.empty()) s = natsOptions_LoadCATrustedCertificates(opts, o.tls_ca.c_str());
  if (s == NATS_OK && !o.tls_cert.empty())
    s = natsOptions_LoadCertificatesChain(opts, o.tls_cert.c_str(), o.tls_key.c_str());
  if (s != NATS_OK) {
    natsOptions_Destroy(opts);
    return std::unexpected(nats_error(Errc::invalid_argument, "jetstream: TLS set-up (tls_ca, tls_cert, tls_key)", s));
  }
  s = natsConnection_Connect(&c->m_nc, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) {
    std::string list;
    for (const auto& u : o.servers) list += (list.empty() ? "" : ",") + u;
    return std::unexpected(nats_error(Errc::not_connected, "jetstream: cannot connect to " + list, s));
  }
  jsOptions defaults;
  if (ctx == nullptr) {
    jsOptions_Init(&defaults);
    ctx = &defaults;
  }
  if (s = natsConnection_JetStream(&c->m_js, c->m_nc, const_cast<jsOptions*>(ctx)); s != NATS_OK) {
    return std::unexpected(nats_error(Errc::io_error, "jetstream: no JetStream context", s));
  }
  return c;
}

JsConnection::~JsConnection() {
  if (m_js != nullptr) jsCtx_Destroy(m_js);
  if (m_nc != nullptr) {
    // Flushes what is buffered (acks, the last publishes) before closing.
    natsConnection_FlushTimeout(m_nc, 2000);
    natsConnection_Destroy(m_nc);
  }
}

Result<void> JsConnection::ensure_stream(const JsOptions& o) {
  // A lookup or a creation can time out while the cluster is busy (several processes placing
  // the same replicated stream at once, a leader election): asked again until
  // connect_timeout_ms has passed (at least 10 s), then the timeout is the error.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max<std::int64_t>(o.connect_timeout_ms, 10000));
  for (;;) {
    natsStatus s = NATS_OK;
    auto r = ensure_stream_once(o, s);
    if (r || s != NATS_TIMEOUT || std::chrono::steady_clock::now() >= deadline) return r;
    log().info("jetstream: stream {}: the cluster did not answer in time; asking again", o.stream);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

Result<void> JsConnection::ensure_stream_once(const JsOptions& o, natsStatus& s) {
  const std::string subjects = o.subject_prefix() + ".>";
  jsStreamInfo* si = nullptr;
  jsErrCode code = jsErrCode(0);
  s = js_GetStreamInfo(&si, m_js, o.stream.c_str(), nullptr, &code);
  if (s == NATS_OK) {
    bool carries = false;
    for (int i = 0; i < si->Config->SubjectsLen; ++i) carries |= subjects == si->Config->Subjects[i];
    jsStreamInfo_Destroy(si);
    if (!carries) {
      return fail(Errc::incompatible, "jetstream: stream '" + o.stream + "' exists but does not hold the subjects '" +
                                          subjects + "' that rill topics map to");
    }
    return {};
  }
  if (s != NATS_NOT_FOUND && code != JSStreamNotFoundErr) {
    return std::unexpected(
        nats_error(Errc::not_connected, "jetstream: cannot look up stream '" + o.stream + "'", s, code));
  }
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const char* subject_list[] = {subjects.c_str()};
  cfg.Name = o.stream.c_str();
  cfg.Subjects = subject_list;
  cfg.SubjectsLen = 1;
  cfg.Storage = o.memory ? js_MemoryStorage : js_FileStorage;
  cfg.Replicas = o.replicas;
  cfg.MaxBytes = o.max_bytes;
  // A full stream refuses new messages (the publisher gets an error) rather than deleting
  // old ones that consumers may not have read: no silent loss.
  cfg.Discard = js_DiscardNew;
  s = js_AddStream(&si, m_js, &cfg, nullptr, &code);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(si);
    log().info("jetstream: created stream {} ({} replicas, {} storage)", o.stream, o.replicas,
               o.memory ? "memory" : "file");
    return {};
  }
  if (code == JSStreamNameExistErr) return ensure_stream_once(o, s);  // another process created it meanwhile
  return std::unexpected(nats_error(Errc::io_error, "jetstream: cannot create stream '" + o.stream + "'", s, code));
}

}  // namespace rill::detail::js
