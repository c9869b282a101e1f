// RequestReader: one HTTP/1.1 request read incrementally with Boost.Beast's parser, plus
// the strictness Beast leaves out (obs-fold, bare LF/CR, duplicate framing headers).
#pragma once

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace rill::http {

/// Size limits of one request.
struct RequestLimits {
  std::size_t header_bytes = 8192;    ///< request line + fields; past it: 431
  std::size_t body_bytes = 1u << 20;  ///< decoded body; past it: 413 (never buffered beyond)
};

/// Why a request was refused while reading it; the status to answer (connection closes).
struct RequestError {
  int status = 400;
  std::string_view reason;  ///< static text, for the response body and logs
};

using Request = boost::beast::http::request<boost::beast::http::string_body>;

/// Reads one request from bytes that arrive in pieces. Not thread-safe; reset() between
/// requests of a keep-alive connection. The caller keeps unconsumed bytes and offers them
/// again, with more appended, on the next call.
class RequestReader {
 public:
  explicit RequestReader(const RequestLimits& limits);

  /// Starts a fresh request (keeps the limits).
  void reset();

  /// Offers `data` (the unconsumed bytes, starting at the same place as the previous
  /// call's unconsumed ones); returns how many bytes were consumed. After the call,
  /// check error(), then header_done() / done().
  std::size_t feed(std::span<const char> data);

  [[nodiscard]] bool header_done() const { return m_parser->is_header_done(); }
  [[nodiscard]] bool done() const { return m_parser->is_done(); }
  [[nodiscard]] const std::optional<RequestError>& error() const noexcept { return m_error; }
  /// True when a body follows the header (Content-Length > 0 or chunked).
  [[nodiscard]] bool expects_body() const;
  /// The request; its body is complete only once done().
  [[nodiscard]] Request& request() { return m_parser->get(); }

 private:
  bool scan_header_bytes(std::span<const char> data);
  void check_header();

  RequestLimits m_limits;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> m_parser;
  std::optional<RequestError> m_error;
  std::size_t m_scanned = 0;  // bytes of the unconsumed data already checked by scan_header_bytes
  std::size_t m_taken = 0;    // bytes of this request Beast has consumed
  bool m_header_checked = false;
};

}  // namespace rill::http
