#include "js_publisher.hpp"

#include "base/logging.hpp"
#include "policies/durability/history.hpp"

namespace rill::detail::js {

namespace {

using clock = std::chrono::steady_clock;

// How long a publish waits for the stream's ack before it is sent again (with the same
// Nats-Msg-Id), and how long a failed one waits before that: a leader election takes
// a few seconds, and a message must outlive it, not fail it.
constexpr std::int64_t ack_timeout_ms = 2000;
constexpr auto retry_delay = std::chrono::milliseconds(200);
// close() waits this long for the stream to confirm what is outstanding.
constexpr auto close_deadline = std::chrono::seconds(20);

// Errors worth sending again: the stream may not have the message, and may take it later.
bool retryable(const jsPubAckErr& e) {
  if (e.ErrCode != 0) return false;  // the stream answered: it refuses this message
  return e.Err == NATS_TIMEOUT || e.Err == NATS_NO_RESPONDERS || e.Err == NATS_CONNECTION_CLOSED ||
         e.Err == NATS_CONNECTION_DISCONNECTED || e.Err == NATS_IO_ERROR || e.Err == NATS_STALE_CONNECTION;
}

}  // namespace

JsPublisher::JsPublisher(JsOptions options, std::string subject, const PublisherConfig& config)
    : m_options(std::move(options)), m_subject(std::move(subject)), m_config(config) {
  jsPubOptions_Init(&m_pub_options);
  m_pub_options.MaxWait = ack_timeout_ms;
}

Result<std::unique_ptr<PublisherTransport>> JsPublisher::create(const Endpoint& ep, const PublisherConfig& config) {
  auto options = parse_options(ep);
  if (!options) return std::unexpected(options.error());
  auto subject = topic_subject(*options, config.topic);
  if (!subject) return std::unexpected(subject.error());
  std::unique_ptr<JsPublisher> p(new JsPublisher(std::move(*options), std::move(*subject), config));
  jsOptions ctx;
  jsOptions_Init(&ctx);
  // Our own window (m_outstanding) is the limit; the library's is set above it so that
  // it never stalls a call of ours, nor the resends from the ack callback.
  ctx.PublishAsync.MaxPending = static_cast<std::int64_t>(p->m_options.window) * 2 + 16;
  ctx.PublishAsync.AckHandler = &JsPublisher::on_ack;
  ctx.PublishAsync.AckHandlerClosure = p.get();
  auto conn = JsConnection::connect(p->m_options, &ctx);
  if (!conn) return std::unexpected(conn.error());
  p->m_conn = std::move(*conn);
  if (auto ok = p->m_conn->ensure_stream(p->m_options); !ok) return std::unexpected(ok.error());
  if (config.history != nullptr) {
    if (auto ok = p->resend_history_tail(); !ok) return std::unexpected(ok.error());
  }
  return std::unique_ptr<PublisherTransport>(std::move(p));
}

JsPublisher::~JsPublisher() {
  // The connection (and its ack thread) goes first: no callback runs into a dead object.
  m_conn.reset();
  for (auto& r : m_retries) natsMsg_Destroy(r.msg);
}

void JsPublisher::on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  auto* self = static_cast<JsPublisher*>(closure);
  std::lock_guard lock(self->m_mu);
  if (pa != nullptr) {
    ++self->m_stored;
    if (pa->Duplicate) ++self->m_duplicates;
    --self->m_outstanding;
  } else if (pae != nullptr && retryable(*pae)) {
    // Kept (the library leaves the message to us): sent again from the publishing thread.
    self->m_retries.push_back({.msg = msg, .attempts = 1, .due = clock::now() + retry_delay});
    msg = nullptr;
  } else {
    ++self->m_failed;
    --self->m_outstanding;
    self->m_failure = pae != nullptr && pae->ErrText != nullptr ? pae->ErrText : "refused by the stream";
    if (self->m_failed == 1)
      log().error("jetstream: stream {} refused a message: {}", self->m_options.stream, self->m_failure);
  }
  natsMsg_Destroy(msg);
  self->m_cv.notify_all();
}

void JsPublisher::resend_due() {
  std::deque<Retry> due;
  {
    std::lock_guard lock(m_mu);
    const auto now = clock::now();
    while (!m_retries.empty() && m_retries.front().due <= now) {
      due.push_back(m_retries.front());
      m_retries.pop_front();
    }
  }
  for (auto& r : due) {
    natsMsg* msg = r.msg;
    if (js_PublishMsgAsync(m_conn->js(), &msg, &m_pub_options) != NATS_OK) {
      // Not taken (closed or the library's buffer is full): tried again later.
      std::lock_guard lock(m_mu);
      m_retries.push_back({.msg = msg, .attempts = r.attempts + 1, .due = clock::now() + retry_delay});
      continue;
    }
    ++m_stats.replayed;
  }
}

bool JsPublisher::wait_room(std::size_t limit, clock::time_point deadline) {
  for (;;) {
    resend_due();
    std::unique_lock lock(m_mu);
    if (m_outstanding < limit) return true;
    const auto now = clock::now();
    if (now >= deadline) return false;
    // Woken by every ack; a retry falls due at most retry_delay from now.
    m_cv.wait_until(lock, std::min(deadline, now + retry_delay));
  }
}

Result<void> JsPublisher::reserve(std::chrono::nanoseconds timeout) {
  const auto start = clock::now();
  if (wait_room(m_options.window, start + timeout)) return {};
  ++m_stats.timeouts;
  m_stats.blocked_ns += static_cast<std::uint64_t>((clock::now() - start).count());
  return fail(Errc::timed_out, "jetstream: " + std::to_string(m_options.window) +
                                   " publishes are waiting for the stream's ack (the publish window is full)");
}

Result<void> JsPublisher::send(std::span<const std::byte> envelope, std::uint64_t seq,
                               std::chrono::nanoseconds timeout) {
  const auto start = clock::now();
  {
    std::lock_guard lock(m_mu);
    if (!m_failure.empty()) {
      // A refusal since the last call is this call's error: the caller learns of it.
      auto why = std::exchange(m_failure, {});
      return fail(Errc::io_error, "jetstream: the stream refused an earlier message (" + why + ")");
    }
  }
  if (!wait_room(m_options.window, start + timeout)) {
    ++m_stats.timeouts;
    m_stats.blocked_ns += static_cast<std::uint64_t>((clock::now() - start).count());
    return fail(Errc::timed_out, "jetstream: the publish window of " + std::to_string(m_options.window) +
                                     " stayed full past the deadline");
  }
  if (const auto waited = clock::now() - start; waited > std::chrono::microseconds(50)) {
    m_stats.blocked_ns += static_cast<std::uint64_t>(waited.count());
  }
  return publish(envelope, seq);
}

Result<void> JsPublisher::publish(std::span<const std::byte> envelope, std::uint64_t seq) {
  if (envelope.size() > m_config.max_message_bytes) return fail(Errc::too_large, "message larger than the limit");
  natsMsg* msg = nullptr;
  natsStatus s = natsMsg_Create(&msg, m_subject.c_str(), nullptr, reinterpret_cast<const char*>(envelope.data()),
                                static_cast<int>(envelope.size()));
  const auto id = msg_id(m_config.publisher_id, seq);
  if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Nats-Msg-Id", id.c_str());
  if (s != NATS_OK) {
    natsMsg_Destroy(msg);
    return std::unexpected(nats_error(Errc::io_error, "jetstream: cannot build a message", s));
  }
  {
    std::lock_guard lock(m_mu);
    ++m_outstanding;
  }
  s = js_PublishMsgAsync(m_conn->js(), &msg, &m_pub_options);
  if (s != NATS_OK) {
    natsMsg_Destroy(msg);  // null when the library took it
    std::lock_guard lock(m_mu);
    --m_outstanding;
    return std::unexpected(nats_error(Errc::io_error, "jetstream: publish failed", s));
  }
  ++m_stats.sent;
  return {};
}

Result<void> JsPublisher::resend_history_tail() {
  History& h = *m_config.history;
  const auto next = h.next_sequence();
  if (next <= 1) return {};
  // At most a window was unconfirmed when the last run ended; the rest the stream has.
  const auto from = next > m_options.window ? next - m_options.window : 1;
  auto cursor = h.cursor(from);
  if (!cursor) return std::unexpected(cursor.error());
  std::uint64_t resent = 0;
  for (auto seq = (*cursor)->position(); seq < next; seq = (*cursor)->position()) {
    auto bytes = (*cursor)->next(next);
    if (!bytes) return std::unexpected(bytes.error());
    if (!*bytes) break;
    if (!wait_room(m_options.window, clock::now() + m_config.publish_timeout)) {
      return fail(Errc::timed_out, "jetstream: the stream did not confirm the log's tail in time");
    }
    if (auto ok = publish(**bytes, seq); !ok) return ok;
    ++resent;
  }
  m_stats.sent -= resent;  // counted as replayed, not as new messages
  m_stats.replayed += resent;
  log().info("jetstream: sent the last {} messages of the log again (the stream drops those it has)", resent);
  return {};
}

std::size_t JsPublisher::service() {
  resend_due();
  std::lock_guard lock(m_mu);
  m_stats.acks = m_stored;
  return 1;
}

Result<std::size_t> JsPublisher::wait_for_subscribers(std::size_t n, clock::time_point) {
  // The stream stores for consumers that come later: it stands in for every subscriber.
  return n;
}

void JsPublisher::close(std::uint64_t) {
  if (!wait_room(1, clock::now() + close_deadline)) {
    std::lock_guard lock(m_mu);
    log().error("jetstream: {} messages were not confirmed by stream {} within {} s", m_outstanding, m_options.stream,
                close_deadline.count());
  }
  std::lock_guard lock(m_mu);
  m_stats.acks = m_stored;
}

}  // namespace rill::detail::js
