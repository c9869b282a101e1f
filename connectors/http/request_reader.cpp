// GCC 12 (optimised with sanitizers) warns that Beast's boost::optional<std::uint64_t>
// content length "may be used uninitialized" inside basic_parser::put; it is a false
// positive in the header, so it is silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "request_reader.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

namespace rill::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

RequestReader::RequestReader(const RequestLimits& limits) : m_limits(limits) {
  reset();
}

void RequestReader::reset() {
  m_parser.emplace();
  m_parser->eager(false);  // stop after the header: checks and 100-continue come before the body
  m_parser->header_limit(static_cast<std::uint32_t>(m_limits.header_bytes));
  m_parser->body_limit(m_limits.body_bytes);
  m_error.reset();
  m_scanned = 0;
  m_taken = 0;
  m_header_checked = false;
}

bool RequestReader::expects_body() const {
  const auto& p = *m_parser;
  if (p.chunked()) return true;
  const auto len = p.content_length();
  return len && *len > 0;
}

// Beast unfolds obs-fold and leaves line-ending strictness to find_eom; the issue wants
// folded lines, bare LF/CR and NULs refused outright, before any field is interpreted.
bool RequestReader::scan_header_bytes(std::span<const char> data) {
  std::size_t i = m_scanned;
  for (; i < data.size(); ++i) {
    const char c = data[i];
    const bool line_start = i == 0 || data[i - 1] == '\n';
    if (c == '\0') {
      m_error = RequestError{400, "NUL byte in the header"};
      return false;
    }
    if (line_start && (c == ' ' || c == '\t')) {
      m_error = RequestError{400, "folded header line (obs-fold) or leading whitespace"};
      return false;
    }
    if (c == '\n' && (i == 0 || data[i - 1] != '\r')) {
      m_error = RequestError{400, "bare LF line ending"};
      return false;
    }
    if (c == '\r') {
      if (i + 1 == data.size()) break;  // look again when the next byte is here
      if (data[i + 1] != '\n') {
        m_error = RequestError{400, "bare CR in the header"};
        return false;
      }
    }
    // CRLF closing an empty line (Beast may already have taken the lines before it).
    if (c == '\n' && (i == 1 || (i >= 2 && data[i - 2] == '\n'))) {
      if (i == 1 && m_taken == 0) {
        m_error = RequestError{400, "empty line before the request line"};
        return false;
      }
      m_scanned = i + 1;  // end of header: what follows is body or the next request
      return true;
    }
  }
  m_scanned = i;
  if (m_scanned > m_limits.header_bytes) {
    m_error = RequestError{431, "request header too large"};
    return false;
  }
  return true;
}

void RequestReader::check_header() {
  m_header_checked = true;
  const auto& req = m_parser->get();
  if (req.version() != 10 && req.version() != 11) {
    m_error = RequestError{505, "only HTTP/1.0 and HTTP/1.1 are served"};
    return;
  }
  int hosts = 0;
  int lengths = 0;
  int encodings = 0;
  beast::string_view length_value;
  beast::string_view encoding_value;
  for (const auto& f : req) {
    switch (f.name()) {
      case bhttp::field::host:
        ++hosts;
        break;
      case bhttp::field::content_length:
        ++lengths;
        length_value = f.value();
        break;
      case bhttp::field::transfer_encoding:
        ++encodings;
        encoding_value = f.value();
        break;
      default:
        break;
    }
  }
  if (hosts > 1 || (req.version() == 11 && hosts == 0)) {
    m_error = RequestError{400, "HTTP/1.1 needs exactly one Host header"};
  } else if (lengths > 1) {
    m_error = RequestError{400, "more than one Content-Length header"};
  } else if (encodings > 1) {
    m_error = RequestError{400, "more than one Transfer-Encoding header"};
  } else if (lengths == 1 && encodings == 1) {
    m_error = RequestError{400, "Content-Length together with Transfer-Encoding"};
  } else if (encodings == 1 && req.version() == 10) {
    m_error = RequestError{400, "Transfer-Encoding in an HTTP/1.0 request"};
  } else if (encodings == 1 && !beast::iequals(encoding_value, "chunked")) {
    m_error = RequestError{400, "Transfer-Encoding other than plain 'chunked'"};
  } else if (lengths == 1) {
    if (length_value.empty() || length_value.size() > 18) {
      m_error = RequestError{400, "bad Content-Length"};
      return;
    }
    for (const char c : length_value) {
      if (c < '0' || c > '9') {
        m_error = RequestError{400, "bad Content-Length"};
        return;
      }
    }
  }
}

std::size_t RequestReader::feed(std::span<const char> data) {
  if (m_error || done() || data.empty()) return 0;
  if (!header_done() && !scan_header_bytes(data)) return 0;
  // Beast 1.74 asserts that a last chunk it has started on is offered again with at least
  // 5 bytes ("0\r\n" plus a trailer byte or two); fed byte by byte it can be offered 4
  // (found by fuzz_http_request). A chunked body always has at least "0\r\n\r\n" still to
  // come until it is complete, so waiting for 5 bytes never stalls a well-formed request.
  if (header_done() && m_parser->chunked() && data.size() < 5) return 0;
  beast::error_code ec;
  const auto n = m_parser->put(boost::asio::const_buffer(data.data(), data.size()), ec);
  // Beast takes whole header lines as it goes; the next call's data starts after them.
  m_scanned = m_scanned > n ? m_scanned - n : 0;
  m_taken += n;
  if (ec == bhttp::error::need_more) ec = {};
  if (ec) {
    if (ec == bhttp::error::header_limit) {
      m_error = RequestError{431, "request header too large"};
    } else if (ec == bhttp::error::body_limit) {
      m_error = RequestError{413, "request body too large"};
    } else if (ec == bhttp::error::bad_chunk || ec == bhttp::error::bad_chunk_extension) {
      m_error = RequestError{400, "bad chunk"};
    } else {
      m_error = RequestError{400, "malformed request"};
    }
    return n;
  }
  if (header_done() && !m_header_checked) {
    check_header();
  } else if (n == 0 && m_parser->chunked() && !done()) {
    // Beast waits for a CRLF that a bare-LF chunk line never sends: refuse it now instead
    // of at the body timeout, and bound how long a chunk line may grow.
    const std::string_view rest(data.data(), data.size());
    const auto lf = rest.find('\n');
    if ((lf != std::string_view::npos && (lf == 0 || rest[lf - 1] != '\r')) ||
        (lf == std::string_view::npos && rest.size() > 4096)) {
      m_error = RequestError{400, "bad chunk line"};
    }
  }
  return n;
}

}  // namespace rill::http
