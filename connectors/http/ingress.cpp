#include "ingress.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/logging.hpp"
#include "rill/endpoint.hpp"

namespace rill::http {

namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view topics_prefix = "/topics/";
// Carried into the envelope when present (lower-case names, as envelope header keys).
constexpr std::array<std::string_view, 6> default_carried = {"content-type",   "webhook-id",        "webhook-timestamp",
                                                             "x-github-event", "x-github-delivery", "x-request-id"};
constexpr std::size_t max_carried = 16;

std::string_view path_of(std::string_view target) {
  const auto q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

std::string_view field(const Request& req, std::string_view name) {
  const auto it = req.find(boost::beast::string_view(name.data(), name.size()));
  if (it == req.end()) return {};
  const auto v = it->value();
  return {v.data(), v.size()};
}

Response text(int status, std::string_view body) {
  return Response{.status = status, .body = body};
}

}  // namespace

std::string topic_dir_name(std::string_view topic) {
  std::string out;
  for (std::size_t i = 0; i < topic.size(); ++i) {
    if (topic[i] == '/') {
      out += "%2F";
    } else if (i == 0 && topic[i] == '.') {
      out += "%2E";
    } else {
      out += topic[i];
    }
  }
  return out;
}

bool valid_topic(std::string_view t) noexcept {
  if (t.empty() || t.size() > 200 || t.front() == '/' || t.find("//") != std::string_view::npos) return false;
  for (const char c : t) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '~' || c == '/' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Ingress::Ingress(Node& node, IngressOptions options)
    : m_node(node), m_options(std::move(options)), m_replays(m_options.replay_capacity) {}

Result<std::unique_ptr<Ingress>> Ingress::create(Node& node, IngressOptions options) {
  auto ep = Endpoint::parse(options.publish_endpoint);
  if (!ep) return std::unexpected(ep.error());
  if (ep->scheme == "http") return fail(Errc::invalid_argument, "--publish must be a tcp://, shm:// or udp:// endpoint");
  for (const auto& t : options.topics) {
    if (!valid_topic(t))
      return fail(Errc::invalid_argument, "topic '" + t + "' has characters outside [A-Za-z0-9._~/-]");
  }
  if (options.topics.size() > options.max_topics) options.max_topics = options.topics.size();
  const auto& d = options.durability;
  if (d.kind == DurabilityKind::persistent && d.dir.empty()) {
    return fail(Errc::invalid_argument, "persistent durability needs a log directory (persistent:DIR)");
  }
  if (d.kind == DurabilityKind::transient_local && d.history == 0) {
    return fail(Errc::invalid_argument, "transient-local durability needs :N (messages kept per topic)");
  }
  for (auto& h : options.carry_headers) {
    for (auto& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  // Bound before any topic exists: a subscriber that connects now is greeted by every
  // topic's publisher before that topic's first message.
  auto binding = node.bind(options.publish_endpoint);
  if (!binding) return std::unexpected(binding.error());
  std::unique_ptr<Ingress> in(new Ingress(node, std::move(options)));
  in->m_binding = std::move(*binding);
  if (d.kind == DurabilityKind::persistent) {
    if (auto loaded = in->load_topic_numbering(); !loaded) return std::unexpected(loaded.error());
  }
  const auto declared = in->m_options.topics;
  // Persistent: the topics of earlier runs are served at once (durable subscribers catch up
  // from their logs without waiting for a new POST), then the declared ones.
  auto opening = in->m_numbering;
  std::erase_if(opening, [&](const std::string& t) {
    return !declared.empty() && std::find(declared.begin(), declared.end(), t) == declared.end();
  });
  opening.insert(opening.end(), declared.begin(), declared.end());
  for (const auto& t : opening) {
    auto created = in->topic(t);
    if (!created) return std::unexpected(created.error());
  }
  return in;
}

Result<void> Ingress::load_topic_numbering() {
  const std::filesystem::path dir = m_options.durability.dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return fail(Errc::io_error, "cannot create " + dir.string() + ": " + ec.message());
  std::ifstream in(dir / "topics");
  std::string line;
  while (std::getline(in, line)) {
    // A line cut short by a crash while it was appended has no newline: it is dropped
    // (its topic had no publisher yet, so nothing was published on it).
    if (in.eof()) break;
    if (!valid_topic(line)) {
      return fail(Errc::corrupt,
                  (dir / "topics").string() + ": line " + std::to_string(m_numbering.size() + 1) + " is not a topic");
    }
    m_numbering.push_back(line);
  }
  return {};
}

Result<void> Ingress::record_topic(std::string_view name) {
  if (m_options.durability.kind != DurabilityKind::persistent) return {};
  // Persistent: the topics are listed in DIR/topics, so a restarted ingress serves them (and
  // their logs) at once; the record is durable before the topic's first message is accepted.
  if (std::find(m_numbering.begin(), m_numbering.end(), name) != m_numbering.end()) return {};
  const auto path = std::filesystem::path(m_options.durability.dir) / "topics";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return fail(Errc::io_error, "cannot open " + path.string() + ": " + std::strerror(errno));
  std::string line(name);
  line += '\n';
  const auto wrote = ::write(fd, line.data(), line.size());
  const int err = errno;
  const bool ok = wrote == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    // A partial line ends without a newline and is ignored at the next start; a later
    // append starts on a fresh line only if we cut it now.
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (!ec && wrote > 0) std::filesystem::resize_file(path, size - static_cast<std::uintmax_t>(wrote), ec);
    return fail(err == ENOSPC ? Errc::no_space : Errc::io_error,
                "cannot record topic '" + std::string(name) + "' in " + path.string() + ": " + std::strerror(err));
  }
  m_numbering.emplace_back(name);
  return {};
}

Result<Ingress::Topic*> Ingress::topic(std::string_view name) {
  if (const auto it = m_by_name.find(std::string(name)); it != m_by_name.end()) return it->second;
  if (m_topics.size() >= m_options.max_topics) return fail(Errc::too_large, "topic limit reached");
  if (auto recorded = record_topic(name); !recorded) return std::unexpected(recorded.error());
  const auto& endpoint = m_options.publish_endpoint;  // every topic on the one endpoint
  PublisherOptions popt{.endpoint = endpoint, .topic = std::string(name), .publish_timeout = m_options.publish_timeout};
  popt.durability = m_options.durability;
  if (popt.durability.kind == DurabilityKind::persistent) {
    popt.durability.dir = (std::filesystem::path(m_options.durability.dir) / topic_dir_name(name)).string();
    popt.log = m_options.log;
  }
  auto pub = m_node.publisher(popt);
  if (!pub) return std::unexpected(pub.error());
  auto t = std::make_unique<Topic>(Topic{std::string(name), endpoint, std::move(*pub)});
  detail::log().info("http: topic '{}' is published on {}", t->name, t->endpoint);
  std::fprintf(stderr, "rill serve: topic '%s' -> %s\n", t->name.c_str(), t->endpoint.c_str());
  auto* raw = t.get();
  m_by_name.emplace(raw->name, raw);
  m_topics.push_back(std::move(t));
  return raw;
}

std::optional<Response> Ingress::on_header(const Request& req) {
  const auto path = path_of({req.target().data(), req.target().size()});
  const auto method = req.method();
  if (path == "/healthz" || path == "/metrics" || path == "/topics") {
    if (method != bhttp::verb::get) return Response{.status = 405, .body = "use GET\n", .allow = "GET"};
    return std::nullopt;  // answered in on_request (a GET may still carry a body to skip)
  }
  if (!path.starts_with(topics_prefix)) return text(404, "no such path\n");
  if (method != bhttp::verb::post) return Response{.status = 405, .body = "use POST\n", .allow = "POST"};
  const auto name = path.substr(topics_prefix.size());
  if (!valid_topic(name)) return text(400, "topic must be 1-200 bytes of [A-Za-z0-9._~/-]\n");
  if (!m_options.topics.empty() && !m_by_name.contains(std::string(name))) return text(404, "unknown topic\n");
  if (!m_options.secrets.empty() && field(req, "webhook-signature").empty() &&
      field(req, "x-hub-signature-256").empty()) {
    ++m_auth_failures[static_cast<int>(VerifyResult::missing)];
    return text(401, "missing signature\n");
  }
  return std::nullopt;
}

Response Ingress::on_request(const Request& req) {
  const auto path = path_of({req.target().data(), req.target().size()});
  if (path == "/healthz") return text(200, "ok\n");
  if (path == "/metrics") {
    render_metrics();
    return Response{.status = 200, .body = m_scratch, .content_type = "text/plain; version=0.0.4"};
  }
  if (path == "/topics") {
    render_topics();
    return Response{.status = 200, .body = m_scratch, .content_type = "application/json"};
  }
  const auto name = path.substr(topics_prefix.size());
  const std::string_view body = req.body();
  const auto webhook_id = field(req, "webhook-id");
  const bool standard = !field(req, "webhook-signature").empty();
  const auto now_sys = std::chrono::system_clock::now();
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(now_sys.time_since_epoch()).count();
  if (!m_options.secrets.empty()) {
    const auto v = verify({.webhook_id = webhook_id,
                           .webhook_timestamp = field(req, "webhook-timestamp"),
                           .webhook_signature = field(req, "webhook-signature"),
                           .hub_signature_256 = field(req, "x-hub-signature-256"),
                           .body = body},
                          m_options.secrets, now_sys, m_options.tolerance);
    if (v != VerifyResult::ok) {
      ++m_auth_failures[static_cast<int>(v)];
      return text(401, to_string(v));
    }
    if (standard && m_replays.seen(webhook_id, now_s)) {
      ++m_duplicates;
      return text(202, "duplicate webhook-id: already published\n");
    }
  }
  auto t = topic(name);
  if (!t) {
    ++(t.error().code == Errc::no_space ? m_no_space : m_publish_errors);
    detail::log().error("http: cannot open topic '{}': {}", name, t.error().message());
    return Response{.status = 503,
                    .body = t.error().code == Errc::no_space ? "disk full: cannot create this topic now; retry later\n"
                                                             : "cannot publish this topic now\n",
                    .retry_after_s = 5};
  }
  std::array<HeaderKV, max_carried> headers;
  std::size_t n = 0;
  const auto carry = [&](std::string_view key) {
    const auto v = field(req, key);
    if (!v.empty() && n < headers.size()) headers[n++] = {key, v};
  };
  for (const auto key : default_carried) carry(key);
  for (const auto& key : m_options.carry_headers) carry(key);

  const auto start = std::chrono::steady_clock::now();
  const auto seq_before = (*t)->publisher.next_sequence();
  auto sent =
      (*t)->publisher.publish_bytes(std::as_bytes(std::span(body.data(), body.size())), std::span(headers.data(), n));
  // A message the history kept is published even if a live send then failed (subscribers
  // get it from the history): the client must not send it again.
  if (!sent && (*t)->publisher.next_sequence() != seq_before) sent = {};
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::size_t b = 0;
  while (b < latency_bounds_s.size() && took > latency_bounds_s[b]) ++b;
  ++m_latency_buckets[b];
  m_latency_sum_s += took;
  if (!sent) {
    if (sent.error().code == Errc::timed_out) {
      ++m_publish_timeouts;
      return Response{
          .status = 429, .body = "subscribers are behind (backpressure); retry later\n", .retry_after_s = 1};
    }
    const auto code = sent.error().code;
    if (code == Errc::too_large) return text(413, "message larger than the publisher's limit\n");
    if (code == Errc::no_space) {
      ++m_no_space;
      return Response{.status = 503,
                      .body = "disk full: the message was not stored (nothing published); retry later\n",
                      .retry_after_s = 5};
    }
    ++m_publish_errors;
    detail::log().error("http: publish on '{}' failed: {}", (*t)->name, sent.error().message());
    return Response{.status = 503,
                    .body = code == Errc::io_error ? "the log cannot be written (nothing published); retry later\n"
                                                   : "publish failed (nothing published); retry later\n",
                    .retry_after_s = 5};
  }
  ++m_published;
  m_published_bytes += body.size();
  // Remembered only once published: a refused attempt may be retried with the same id.
  if (!m_options.secrets.empty() && standard) m_replays.remember(webhook_id, now_s + 2 * m_options.tolerance.count());
  return text(202, "");
}

void Ingress::on_tick(std::chrono::steady_clock::time_point now) {
  if (now - m_last_service < std::chrono::milliseconds(20)) return;
  m_last_service = now;
  for (auto& t : m_topics) t->publisher.service();  // joins, credits, departures while idle
}

void Ingress::render_topics() {
  auto& o = m_scratch;
  o = "{";
  for (const auto& t : m_topics) {
    if (o.size() > 1) o += ',';
    o += fmt::format(R"("{}":{{"endpoint":"{}","publisher":"{:016x}"}})", t->name, t->endpoint, t->publisher.id());
  }
  o += "}\n";
}

void Ingress::render_metrics() {
  auto& o = m_scratch;
  o.clear();
  char line[512];
  const auto add = [&](const char* fmt, auto... args) {
    const int k = std::snprintf(line, sizeof line, fmt, args...);
    if (k > 0) o.append(line, std::min<std::size_t>(static_cast<std::size_t>(k), sizeof line - 1));
  };
  using ull = unsigned long long;
  if (m_server != nullptr) {
    const auto& s = m_server->stats();
    o += "# TYPE rill_http_requests_total counter\n";
    for (std::size_t code = 100; code < s.by_status.size(); ++code) {
      if (s.by_status[code] > 0) add("rill_http_requests_total{code=\"%zu\"} %llu\n", code, ull(s.by_status[code]));
    }
    o += "# TYPE rill_http_received_bytes_total counter\n";
    add("rill_http_received_bytes_total %llu\n", ull(s.bytes_in));
    o += "# TYPE rill_http_sent_bytes_total counter\n";
    add("rill_http_sent_bytes_total %llu\n", ull(s.bytes_out));
    o += "# TYPE rill_http_connections gauge\n";
    add("rill_http_connections %llu\n", ull(s.open));
    o += "# TYPE rill_http_connections_refused_total counter\n";
    add("rill_http_connections_refused_total %llu\n", ull(s.refused));
    o += "# TYPE rill_http_timeouts_total counter\n";
    add("rill_http_timeouts_total{phase=\"header\"} %llu\n", ull(s.header_timeouts));
    add("rill_http_timeouts_total{phase=\"body\"} %llu\n", ull(s.body_timeouts));
    add("rill_http_timeouts_total{phase=\"idle\"} %llu\n", ull(s.idle_timeouts));
    add("rill_http_timeouts_total{phase=\"write\"} %llu\n", ull(s.write_timeouts));
    o += "# TYPE rill_http_tls_handshakes_total counter\n";
    add("rill_http_tls_handshakes_total{result=\"ok\"} %llu\n", ull(s.tls_handshakes));
    add("rill_http_tls_handshakes_total{result=\"failed\"} %llu\n", ull(s.tls_failures));
  }
  o += "# TYPE rill_endpoint_subscriptions gauge\n";
  add("rill_endpoint_subscriptions %llu\n", ull(m_binding.subscriptions()));
  o += "# TYPE rill_http_published_total counter\n";
  add("rill_http_published_total %llu\n", ull(m_published));
  o += "# TYPE rill_http_published_bytes_total counter\n";
  add("rill_http_published_bytes_total %llu\n", ull(m_published_bytes));
  o += "# TYPE rill_http_duplicates_total counter\n";
  add("rill_http_duplicates_total %llu\n", ull(m_duplicates));
  o += "# TYPE rill_http_replay_cache_evictions_total counter\n";
  add("rill_http_replay_cache_evictions_total %llu\n", ull(m_replays.evictions()));
  o += "# TYPE rill_http_publish_drops_total counter\n";
  add("rill_http_publish_drops_total{reason=\"backpressure\"} %llu\n", ull(m_publish_timeouts));
  add("rill_http_publish_drops_total{reason=\"error\"} %llu\n", ull(m_publish_errors));
  add("rill_http_publish_drops_total{reason=\"no_space\"} %llu\n", ull(m_no_space));
  o += "# TYPE rill_http_auth_failures_total counter\n";
  for (int r = 1; r < static_cast<int>(m_auth_failures.size()); ++r) {
    add("rill_http_auth_failures_total{reason=\"%s\"} %llu\n", std::string(to_string(VerifyResult(r))).c_str(),
        ull(m_auth_failures[r]));
  }
  o += "# TYPE rill_http_publish_seconds histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b < latency_bounds_s.size(); ++b) {
    cumulative += m_latency_buckets[b];
    add("rill_http_publish_seconds_bucket{le=\"%g\"} %llu\n", latency_bounds_s[b], ull(cumulative));
  }
  cumulative += m_latency_buckets.back();
  add("rill_http_publish_seconds_bucket{le=\"+Inf\"} %llu\n", ull(cumulative));
  add("rill_http_publish_seconds_sum %.9f\n", m_latency_sum_s);
  add("rill_http_publish_seconds_count %llu\n", ull(cumulative));
  // Per topic: the publisher's view of its subscriptions (this process has no subscriptions).
  o += "# TYPE rill_topic_subscribers gauge\n# TYPE rill_topic_sent_total counter\n";
  o += "# TYPE rill_topic_peer_drops_total counter\n# TYPE rill_topic_blocked_seconds_total counter\n";
  for (const auto& t : m_topics) {
    const auto& ps = t->publisher.stats();
    const char* n = t->name.c_str();
    add("rill_topic_subscribers{topic=\"%s\"} %llu\n", n, ull(ps.subscribers));
    add("rill_topic_sent_total{topic=\"%s\"} %llu\n", n, ull(ps.sent));
    add("rill_topic_peer_drops_total{topic=\"%s\"} %llu\n", n, ull(ps.peer_drops));
    add("rill_topic_blocked_seconds_total{topic=\"%s\"} %.6f\n", n, static_cast<double>(ps.blocked_ns) / 1e9);
  }
  render_log_metrics();
}

}  // namespace rill::http

namespace rill::http {

void Ingress::render_log_metrics() {
  if (m_options.durability.kind != DurabilityKind::persistent) return;
  using ull = unsigned long long;
  char line[512];
  const auto add = [&](const char* fmt, auto... args) {
    const int k = std::snprintf(line, sizeof line, fmt, args...);
    if (k > 0) m_scratch.append(line, std::min<std::size_t>(static_cast<std::size_t>(k), sizeof line - 1));
  };
  // Each topic's log: where its sequence stands, what the writer did, how much is kept.
  m_scratch += "# TYPE rill_log_next_sequence gauge\n# TYPE rill_log_first_sequence gauge\n";
  m_scratch += "# TYPE rill_log_appends_total counter\n# TYPE rill_log_batches_total counter\n";
  m_scratch += "# TYPE rill_log_fsyncs_total counter\n# TYPE rill_log_bytes_total counter\n";
  m_scratch += "# TYPE rill_log_no_space_errors_total counter\n# TYPE rill_log_segments gauge\n";
  m_scratch += "# TYPE rill_topic_acks_total counter\n# TYPE rill_topic_replayed_total counter\n";
  for (const auto& t : m_topics) {
    const auto* log = t->publisher.log();
    if (log == nullptr) continue;
    const char* n = t->name.c_str();
    const auto ls = log->stats();
    add("rill_log_next_sequence{topic=\"%s\"} %llu\n", n, ull(log->next_sequence()));
    add("rill_log_first_sequence{topic=\"%s\"} %llu\n", n, ull(log->first_sequence()));
    add("rill_log_appends_total{topic=\"%s\"} %llu\n", n, ull(ls.appends));
    add("rill_log_batches_total{topic=\"%s\"} %llu\n", n, ull(ls.batches));
    add("rill_log_fsyncs_total{topic=\"%s\"} %llu\n", n, ull(ls.fsyncs));
    add("rill_log_bytes_total{topic=\"%s\"} %llu\n", n, ull(ls.bytes));
    add("rill_log_no_space_errors_total{topic=\"%s\"} %llu\n", n, ull(ls.no_space_errors));
    add("rill_log_segments{topic=\"%s\"} %zu\n", n, log->segments().size());
    const auto& ps = t->publisher.stats();
    add("rill_topic_acks_total{topic=\"%s\"} %llu\n", n, ull(ps.acks));
    add("rill_topic_replayed_total{topic=\"%s\"} %llu\n", n, ull(ps.replayed));
  }
}

}  // namespace rill::http
