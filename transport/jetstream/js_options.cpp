#include "js_options.hpp"

#include <charconv>
#include <cinttypes>
#include <cstdio>

namespace rill::detail::js {

namespace {

Error bad(const Endpoint& ep, const std::string& what) {
  return Error{.code = Errc::invalid_argument, .detail = "jetstream endpoint '" + ep.uri + "': " + what};
}

template <typename T>
bool read_number(std::string_view text, T& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// One "HOST:PORT" of the server list.
bool read_server(std::string_view text, std::string& out) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  unsigned port = 0;
  if (!read_number(text.substr(colon + 1), port) || port == 0 || port > 65535) return false;
  for (char c : text.substr(0, colon)) {
    if (c == '/' || c == '@' || c == ' ' || c == '?') return false;
  }
  out = "nats://";
  out.append(text);
  return true;
}

}  // namespace

Result<JsOptions> parse_options(const Endpoint& ep) {
  JsOptions o;
  std::string_view rest = ep.uri;
  if (const auto sep = rest.find("://"); sep != std::string_view::npos) rest = rest.substr(sep + 3);
  if (const auto q = rest.find('?'); q != std::string_view::npos) rest = rest.substr(0, q);
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos) return std::unexpected(bad(ep, "needs a stream: jetstream://HOST:PORT/STREAM"));
  std::string_view servers = rest.substr(0, slash);
  const std::string_view stream = rest.substr(slash + 1);
  if (servers.empty()) return std::unexpected(bad(ep, "needs at least one HOST:PORT"));
  while (!servers.empty()) {
    const auto comma = servers.find(',');
    std::string url;
    if (!read_server(servers.substr(0, comma), url)) {
      return std::unexpected(bad(ep, "'" + std::string(servers.substr(0, comma)) + "' is not HOST:PORT"));
    }
    o.servers.push_back(std::move(url));
    if (comma == std::string_view::npos) break;
    servers = servers.substr(comma + 1);
    if (servers.empty()) return std::unexpected(bad(ep, "ends with a ','"));
  }
  if (stream.empty() || stream.size() > 64) return std::unexpected(bad(ep, "the stream name needs 1-64 characters"));
  for (char c : stream) {
    if (!name_char(c)) return std::unexpected(bad(ep, "the stream name may hold only [A-Za-z0-9_-]"));
  }
  o.stream = std::string(stream);

  std::string_view query = ep.query;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos) {
      // Appended piece by piece: GCC 12 sees a false -Wrestrict in "'" + std::string(...) here.
      std::string what = "'";
      what.append(pair).append("' needs =VALUE");
      return std::unexpected(bad(ep, what));
    }
    const auto key = pair.substr(0, eq);
    const auto value = pair.substr(eq + 1);
    const auto number_error = [&](const char* range) {
      return std::unexpected(bad(ep, std::string(key) + " must be " + range + ", not '" + std::string(value) + "'"));
    };
    if (key == "replicas") {
      if (!read_number(value, o.replicas) || o.replicas < 1 || o.replicas > 5) return number_error("1..5");
    } else if (key == "storage") {
      if (value != "file" && value != "memory") return number_error("file or memory");
      o.memory = value == "memory";
    } else if (key == "max_bytes") {
      if (!read_number(value, o.max_bytes) || o.max_bytes < 1) return number_error("a positive byte count");
    } else if (key == "window") {
      if (!read_number(value, o.window) || o.window < 1 || o.window > (1u << 20)) return number_error("1..1048576");
    } else if (key == "ack_wait_ms") {
      if (!read_number(value, o.ack_wait_ms) || o.ack_wait_ms < 100) return number_error("at least 100");
    } else if (key == "reorder_ms") {
      if (!read_number(value, o.reorder_ms) || o.reorder_ms < 0) return number_error("0 or more");
    } else if (key == "connect_timeout_ms") {
      if (!read_number(value, o.connect_timeout_ms) || o.connect_timeout_ms < 1) return number_error("positive");
    } else if (key == "tls") {
      if (value != "0" && value != "1") return number_error("0 or 1");
      o.tls = value == "1";
    } else if (key == "tls_ca" || key == "tls_cert" || key == "tls_key") {
      if (value.empty()) return std::unexpected(bad(ep, std::string(key) + " needs a file"));
      (key == "tls_ca" ? o.tls_ca : key == "tls_cert" ? o.tls_cert : o.tls_key) = std::string(value);
      o.tls = true;
    } else {
      return std::unexpected(bad(ep, "unknown option '" + std::string(key) +
                                         "' (replicas, storage, max_bytes, window, ack_wait_ms, reorder_ms, "
                                         "connect_timeout_ms, tls, tls_ca, tls_cert, tls_key)"));
    }
  }
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return std::unexpected(bad(ep, "tls_cert and tls_key go together (the client's certificate and its key)"));
  }
  return o;
}

Result<std::string> topic_subject(const JsOptions& o, std::string_view topic) {
  std::string subject = o.subject_prefix();
  std::size_t segment = 0;
  subject += '.';
  for (char c : topic) {
    if (c == '/') {
      if (segment == 0) break;
      subject += '.';
      segment = 0;
      continue;
    }
    if (c == '.' || c == '*' || c == '>' || c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      return fail(Errc::invalid_argument,
                  "topic '" + std::string(topic) + "' cannot be a JetStream subject: no '.', '*', '>' or blanks");
    }
    subject += c;
    ++segment;
  }
  if (segment == 0) {
    return fail(Errc::invalid_argument,
                "topic '" + std::string(topic) +
                    "' cannot be a JetStream subject: empty segment (a '/' at either end or '//')");
  }
  return subject;
}

std::string subject_topic(const JsOptions& o, std::string_view subject) {
  const auto prefix = o.subject_prefix() + ".";
  if (!subject.starts_with(prefix)) return {};
  std::string topic(subject.substr(prefix.size()));
  for (char& c : topic) {
    if (c == '.') c = '/';
  }
  return topic;
}

std::string prefix_filter(const JsOptions& o, std::string_view prefix) {
  std::string filter = o.subject_prefix() + ".";
  const auto last = prefix.rfind('/');
  if (last == std::string_view::npos) return filter + ">";
  // Only whole segments that are valid subject tokens narrow the filter; anything else
  // (a '*' or an empty segment) falls back to the whole stream, and the core filters.
  const auto whole = prefix.substr(0, last + 1);
  auto subject = topic_subject(o, whole.substr(0, whole.size() - 1));
  if (!subject) return filter + ">";
  return *subject + ".>";
}

std::string msg_id(std::uint64_t publisher_id, std::uint64_t seq) {
  char text[48];
  std::snprintf(text, sizeof text, "%016" PRIx64 "-%" PRIu64, publisher_id, seq);
  return text;
}

bool parse_msg_id(std::string_view text, std::uint64_t& publisher_id, std::uint64_t& seq) {
  if (text.size() < 18 || text[16] != '-') return false;
  auto [e1, ec1] = std::from_chars(text.data(), text.data() + 16, publisher_id, 16);
  if (ec1 != std::errc{} || e1 != text.data() + 16) return false;
  return read_number(text.substr(17), seq) && seq > 0;
}

}  // namespace rill::detail::js
