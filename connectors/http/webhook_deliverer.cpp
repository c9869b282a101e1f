#include "webhook_deliverer.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "base/logging.hpp"

namespace rill::http {

namespace {

using Clock = std::chrono::steady_clock;

// Receivers that answer these will not accept the message later either (Standard Webhooks).
bool final_status(long status) {
  return status == 400 || status == 401 || status == 404 || status == 410;
}

// Header names and values from the network go into request headers: only visible ASCII
// and spaces pass, so nothing can inject a line.
bool header_safe(std::string_view s, bool is_name) {
  if (s.empty() && is_name) return false;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e || (is_name && (c == ' ' || c == ':'))) return false;
  }
  return true;
}

void json_escape(std::string& out, std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
}

bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u >= 0x20 && u < 0x7f) || c == '\n' || c == '\r' || c == '\t';
  });
}

std::size_t discard_body(char*, std::size_t size, std::size_t n, void*) {
  return size * n;
}

}  // namespace

struct WebhookDeliverer::Delivery {
  ~Delivery() {
    if (headers != nullptr) curl_slist_free_all(headers);
    if (easy != nullptr) curl_easy_cleanup(easy);
  }
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  bool used = false;
  bool in_flight = false;
  bool abort_requested = false;  // the receiver answered webhook-delivery: abort-message
  std::size_t attempts = 0;
  Clock::time_point due{};
  long last_status = 0;
  std::string last_error;
  char error_buf[CURL_ERROR_SIZE]{};
  // The message, copied out of the subscriber's buffer (it outlives the handler).
  std::string topic;
  std::string payload;
  std::string content_type;
  std::string webhook_id;
  std::vector<std::pair<std::string, std::string>> env_headers;
  std::uint64_t publisher = 0;
  std::uint64_t seq = 0;
  std::int64_t ts_ns = 0;
};

WebhookDeliverer::WebhookDeliverer(DeliveryOptions options) : m_options(std::move(options)) {}

WebhookDeliverer::~WebhookDeliverer() {
  for (auto& d : m_slots) {
    if (d->in_flight) curl_multi_remove_handle(static_cast<CURLM*>(m_multi), d->easy);
  }
  m_slots.clear();
  if (m_multi != nullptr) curl_multi_cleanup(static_cast<CURLM*>(m_multi));
  if (m_dead_letters != nullptr) std::fclose(m_dead_letters);
}

Result<std::unique_ptr<WebhookDeliverer>> WebhookDeliverer::create(DeliveryOptions options) {
  if (!options.url.starts_with("http://") && !options.url.starts_with("https://")) {
    return fail(Errc::invalid_argument, "webhook URL must start with http:// or https://");
  }
  if (options.window == 0 || options.window > 4096) return fail(Errc::invalid_argument, "window must be 1-4096");
  if (options.schedule.delays.empty()) return fail(Errc::invalid_argument, "empty retry schedule");
  static std::once_flag curl_once;
  static CURLcode curl_init = CURLE_OK;
  std::call_once(curl_once, [] { curl_init = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (curl_init != CURLE_OK) return fail(Errc::io_error, "curl_global_init failed");
  std::unique_ptr<WebhookDeliverer> d(new WebhookDeliverer(std::move(options)));
  d->m_multi = curl_multi_init();
  if (d->m_multi == nullptr) return fail(Errc::io_error, "curl_multi_init failed");
  for (std::size_t i = 0; i < d->m_options.window; ++i) {
    auto slot = std::make_unique<Delivery>();
    slot->easy = curl_easy_init();
    if (slot->easy == nullptr) return fail(Errc::io_error, "curl_easy_init failed");
    d->m_slots.push_back(std::move(slot));
  }
  if (d->m_options.ack_finished) d->m_taken.reserve(d->m_options.window);
  return d;
}

void WebhookDeliverer::take(const MessageView& m) {
  const auto it = std::find_if(m_slots.begin(), m_slots.end(), [](const auto& s) { return !s->used; });
  if (it == m_slots.end()) return;  // cannot happen: step() polls at most the free slots
  Delivery& d = **it;
  d.used = true;
  d.in_flight = false;
  d.abort_requested = false;
  d.attempts = 0;
  d.last_status = 0;
  d.last_error.clear();
  d.topic.assign(m.topic());
  d.payload.assign(m.payload_text());
  d.publisher = m.publisher_id();
  d.seq = m.sequence();
  d.ts_ns = m.timestamp_ns();
  d.content_type = "application/octet-stream";
  d.env_headers.clear();
  for (std::size_t i = 0; i < m.header_count(); ++i) {
    const auto h = m.header_at(i);
    if (h.key == "content-type") {
      if (header_safe(h.value, false)) d.content_type.assign(h.value);
    } else {
      d.env_headers.emplace_back(std::string(h.key), std::string(h.value));
    }
  }
  char id[64];
  std::snprintf(id, sizeof id, "rill_%016llx_%llu", static_cast<unsigned long long>(d.publisher),
                static_cast<unsigned long long>(d.seq));
  d.webhook_id = id;
  d.due = Clock::now() + m_options.schedule.delay_before(1, m_rng);
  if (m_options.ack_finished) m_taken.push_back({.publisher = d.publisher, .seq = d.seq});
  ++m_stats.taken;
  ++m_stats.pending;
}

void WebhookDeliverer::start_attempt(Delivery& d) {
  ++d.attempts;
  ++m_stats.attempts;
  if (d.attempts > 1) ++m_stats.retries;
  d.abort_requested = false;
  d.error_buf[0] = '\0';
  if (d.headers != nullptr) curl_slist_free_all(d.headers);
  d.headers = nullptr;
  const auto add = [&](const std::string& line) { d.headers = curl_slist_append(d.headers, line.c_str()); };
  const auto now_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  add("Content-Type: " + d.content_type);
  add("webhook-id: " + d.webhook_id);
  add("webhook-timestamp: " + std::to_string(now_s));
  if (!m_options.secrets.empty())
    add("webhook-signature: " + sign_standard(m_options.secrets, d.webhook_id, now_s, d.payload));
  add("rill-topic: " + (header_safe(d.topic, false) ? d.topic : std::string("?")));
  char hex[24];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(d.publisher));
  add(std::string("rill-publisher: ") + hex);
  add("rill-sequence: " + std::to_string(d.seq));
  add("rill-timestamp-ns: " + std::to_string(d.ts_ns));
  add("rill-attempt: " + std::to_string(d.attempts));
  for (const auto& [k, v] : d.env_headers) {
    if (header_safe(k, true) && header_safe(v, false)) add("rill-header-" + k + ": " + v);
  }
  add("Expect:");  // no 100-continue round trip

  CURL* e = d.easy;
  curl_easy_reset(e);
  curl_easy_setopt(e, CURLOPT_URL, m_options.url.c_str());
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, d.payload.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(d.payload.size()));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, d.headers);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(m_options.timeout.count()));
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PRIVATE, &d);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d.error_buf);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "rill-webhook/0.1");
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(
      e, CURLOPT_HEADERFUNCTION, +[](char* buf, std::size_t size, std::size_t n, void* user) -> std::size_t {
        const std::string_view line(buf, size * n);
        constexpr std::string_view name = "webhook-delivery:";
        if (line.size() > name.size() && strncasecmp(line.data(), name.data(), name.size()) == 0 &&
            line.find("abort-message") != std::string_view::npos) {
          static_cast<Delivery*>(user)->abort_requested = true;
        }
        return size * n;
      });
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &d);
  if (!m_options.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, m_options.ca_file.c_str());
  d.in_flight = curl_multi_add_handle(static_cast<CURLM*>(m_multi), e) == CURLM_OK;
  if (d.in_flight) {
    ++m_active;
  } else {
    d.last_error = "curl_multi_add_handle failed";
    finish(d, d.last_error);
  }
}

std::size_t WebhookDeliverer::step(Subscriber& sub, std::chrono::milliseconds max_wait) {
  auto now = Clock::now();
  std::size_t done = 0;
  // Durable: a finished delivery still counts until it is acknowledged (an unfinished one
  // of its publisher comes first), so what a crash can deliver again stays within the window.
  const std::size_t room = m_options.window - (m_options.ack_finished ? m_taken.size() : m_stats.pending);
  if (room > 0) {
    const auto handler = [this](const MessageView& m) { take(m); };
    if (m_stats.pending == 0) {
      sub.wait_poll(handler, room, max_wait);  // nothing else to do: idle in the subscriber
      now = Clock::now();
    } else {
      sub.poll(handler, room);
    }
  }
  auto next_due = now + max_wait;
  for (auto& d : m_slots) {
    if (!d->used || d->in_flight) continue;
    if (d->due <= now) {
      start_attempt(*d);
    } else {
      next_due = std::min(next_due, d->due);
    }
  }
  int running = 0;
  curl_multi_perform(static_cast<CURLM*>(m_multi), &running);
  done += collect_finished();
  if (m_stats.pending > 0) {
    // Wait on the transfers, but come back soon when the window has room for new messages.
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_due - Clock::now());
    if (m_stats.pending < m_options.window) wait = std::min(wait, std::chrono::milliseconds(2));
    curl_multi_poll(static_cast<CURLM*>(m_multi), nullptr, 0, static_cast<int>(std::max<std::int64_t>(wait.count(), 0)),
                    nullptr);
    curl_multi_perform(static_cast<CURLM*>(m_multi), &running);
    done += collect_finished();
  }
  if (m_options.ack_finished) ack_done(sub);
  return done;
}

void WebhookDeliverer::mark_done(const Delivery& d) {
  if (!m_options.ack_finished) return;
  for (auto& t : m_taken) {
    if (t.publisher == d.publisher && t.seq == d.seq) {
      t.done = true;
      return;
    }
  }
}

void WebhookDeliverer::ack_done(Subscriber& sub) {
  // POSTs finish out of order; an ack covers everything up to its sequence, so only the
  // finished prefix of each publisher's deliveries may be acknowledged. m_taken is in
  // take order: a finished entry is acked and dropped unless an unfinished one of the
  // same publisher comes before it.
  m_blocked.clear();
  std::size_t kept = 0;
  for (std::size_t i = 0; i < m_taken.size(); ++i) {
    const auto t = m_taken[i];
    const bool blocked = std::find(m_blocked.begin(), m_blocked.end(), t.publisher) != m_blocked.end();
    if (!t.done || blocked) {
      if (!blocked) m_blocked.push_back(t.publisher);
      m_taken[kept++] = t;
      continue;
    }
    // The last finished entry of this publisher's prefix carries the ack.
    bool last_of_prefix = true;
    for (std::size_t j = i + 1; j < m_taken.size(); ++j) {
      if (m_taken[j].publisher != t.publisher) continue;
      last_of_prefix = !m_taken[j].done;
      break;
    }
    ++m_stats.acked;
    if (!last_of_prefix) continue;
    if (auto r = sub.ack(t.publisher, t.seq); !r) {
      ++m_stats.ack_errors;
      detail::log().error("webhook: cannot acknowledge publisher {:016x} seq {}: {}", t.publisher, t.seq,
                          r.error().message());
    }
  }
  m_taken.resize(kept);
}

std::size_t WebhookDeliverer::collect_finished() {
  std::size_t done = 0;
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(static_cast<CURLM*>(m_multi), &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    Delivery* d = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &d);
    const CURLcode code = msg->data.result;
    curl_multi_remove_handle(static_cast<CURLM*>(m_multi), msg->easy_handle);
    --m_active;
    d->in_flight = false;
    d->last_status = 0;
    if (code == CURLE_OK) curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &d->last_status);
    if (code == CURLE_OK && d->last_status >= 200 && d->last_status < 300) {
      ++m_stats.delivered;
      finish(*d, {});
      ++done;
      continue;
    }
    d->last_error = code != CURLE_OK ? std::string(d->error_buf[0] ? d->error_buf : curl_easy_strerror(code))
                                     : "receiver answered " + std::to_string(d->last_status);
    if (d->abort_requested) {
      dead_letter(*d, "receiver asked to abort (webhook-delivery: abort-message)");
      ++done;
    } else if (code == CURLE_OK && final_status(d->last_status)) {
      dead_letter(*d, "receiver answered " + std::to_string(d->last_status) + " (not retried)");
      ++done;
    } else if (d->attempts >= m_options.schedule.delays.size()) {
      dead_letter(*d, "gave up after " + std::to_string(d->attempts) + " attempts: " + d->last_error);
      ++done;
    } else {
      d->due = Clock::now() + m_options.schedule.delay_before(d->attempts + 1, m_rng);
    }
  }
  return done;
}

void WebhookDeliverer::finish(Delivery& d, std::string_view reason) {
  if (!reason.empty()) return dead_letter(d, reason);
  mark_done(d);
  d.used = false;
  --m_stats.pending;
}

void WebhookDeliverer::dead_letter(Delivery& d, std::string_view reason) {
  if (m_dead_letters == nullptr) {
    m_dead_letters = std::fopen(m_options.dead_letter_path.c_str(), "a");
    if (m_dead_letters == nullptr) {
      detail::log().error("webhook: cannot open dead-letter log '{}': {}", m_options.dead_letter_path,
                          std::strerror(errno));
    }
  }
  std::string line = "{\"reason\":\"";
  json_escape(line, reason);
  line += "\",\"url\":\"";
  json_escape(line, m_options.url);
  char hex[24];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(d.publisher));
  line += "\",\"attempts\":" + std::to_string(d.attempts) + ",\"last_status\":" + std::to_string(d.last_status) +
          ",\"topic\":\"";
  json_escape(line, d.topic);
  line += "\",\"publisher\":\"" + std::string(hex) + "\",\"seq\":" + std::to_string(d.seq) +
          ",\"ts_ns\":" + std::to_string(d.ts_ns) + ",\"webhook_id\":\"" + d.webhook_id + "\",\"headers\":{";
  bool first = true;
  for (const auto& [k, v] : d.env_headers) {
    line += first ? "\"" : ",\"";
    first = false;
    json_escape(line, k);
    line += "\":\"";
    json_escape(line, v);
    line += '"';
  }
  line += "},\"content_type\":\"";
  json_escape(line, d.content_type);
  if (printable(d.payload)) {
    line += "\",\"payload_encoding\":\"text\",\"payload\":\"";
    json_escape(line, d.payload);
  } else {
    line += "\",\"payload_encoding\":\"base64\",\"payload\":\"";
    line += base64_encode(std::span(reinterpret_cast<const unsigned char*>(d.payload.data()), d.payload.size()));
  }
  line += "\"}\n";
  bool stored = false;
  if (m_dead_letters != nullptr) {
    stored = std::fwrite(line.data(), 1, line.size(), m_dead_letters) == line.size();
    stored = std::fflush(m_dead_letters) == 0 && stored;
    // Durable: the line is the message's only copy once it is acknowledged.
    if (m_options.ack_finished) stored = ::fdatasync(::fileno(m_dead_letters)) == 0 && stored;
  }
  ++m_stats.dead_lettered;
  if (stored || !m_options.ack_finished) {
    mark_done(d);
  } else {
    // Never acknowledged, so it holds its publisher's acks (and, once the window fills,
    // the delivery) back, and the next run delivers it again.
    detail::log().error(
        "webhook: publisher {:016x} seq {} could not be dead-lettered in '{}'; it stays "
        "unacknowledged and is delivered again after a restart",
        d.publisher, d.seq, m_options.dead_letter_path);
  }
  d.used = false;
  --m_stats.pending;
}

void WebhookDeliverer::shutdown() {
  for (auto& d : m_slots) {
    if (!d->used) continue;
    if (d->in_flight) {
      curl_multi_remove_handle(static_cast<CURLM*>(m_multi), d->easy);
      d->in_flight = false;
      --m_active;
    }
    if (m_options.ack_finished) {
      // Not acknowledged: the durable subscription delivers it again next run.
      ++m_stats.left_unfinished;
      d->used = false;
      --m_stats.pending;
      continue;
    }
    dead_letter(*d, "shutdown before delivery (after " + std::to_string(d->attempts) + " attempts)");
  }
  if (m_stats.left_unfinished > 0) {
    detail::log().info("webhook: {} unfinished deliveries are left unacknowledged for the next run",
                       m_stats.left_unfinished);
  }
}

}  // namespace rill::http
