// How rill sub prints messages: json lines, text, or the raw envelope in hex.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "rill/message.hpp"
#include "rill/stats.hpp"

namespace rill::cli {

enum class Format { json, text, hex };

[[nodiscard]] std::optional<Format> parse_format(std::string_view name);

/// JSON string escaping (RFC 8259) of `in`, appended to `out` with quotes.
void append_json_string(std::string& out, std::string_view in);
/// Standard base64 (RFC 4648, with padding) of `in`, appended to `out`.
void append_base64(std::string& out, std::span<const std::byte> in);
/// True when `in` is valid UTF-8 without control characters other than tab, CR, LF.
[[nodiscard]] bool is_printable_utf8(std::span<const std::byte> in);

/// Formats messages into a reused line buffer and writes them to stdout.
class Printer {
 public:
  explicit Printer(Format format) : m_format(format) {}
  void print(const MessageView& m);
  void print_stats(const SubscriberStats& s);
  void flush();
  /// Each line goes out with one write(2) to fd 1, bypassing stdio: a kill -9 never leaves
  /// half a line, nor loses a line the handler finished (durable subscriptions).
  void write_lines_directly() noexcept { m_direct = true; }

 private:
  Format m_format;
  bool m_direct = false;
  std::string m_line;
};

}  // namespace rill::cli
