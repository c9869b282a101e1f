#include "output.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace rill::cli {

std::optional<Format> parse_format(std::string_view name) {
  if (name == "json") return Format::json;
  if (name == "text") return Format::text;
  if (name == "hex") return Format::hex;
  return std::nullopt;
}

void append_json_string(std::string& out, std::string_view in) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (const char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

void append_base64(std::string& out, std::span<const std::byte> in) {
  static constexpr char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const auto v = std::to_integer<unsigned>(in[i]) << 16 | std::to_integer<unsigned>(in[i + 1]) << 8 |
                   std::to_integer<unsigned>(in[i + 2]);
    out += table[v >> 18];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += table[v & 63];
  }
  const auto rest = in.size() - i;
  if (rest == 0) return;
  unsigned v = std::to_integer<unsigned>(in[i]) << 16;
  if (rest == 2) v |= std::to_integer<unsigned>(in[i + 1]) << 8;
  out += table[v >> 18];
  out += table[(v >> 12) & 63];
  out += rest == 2 ? table[(v >> 6) & 63] : '=';
  out += '=';
}

bool is_printable_utf8(std::span<const std::byte> in) {
  std::size_t i = 0;
  while (i < in.size()) {
    const auto c = std::to_integer<unsigned>(in[i]);
    std::size_t extra = 0;
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return false;
    } else if ((c & 0xe0) == 0xc0 && c >= 0xc2) {
      extra = 1;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
    } else if ((c & 0xf8) == 0xf0 && c <= 0xf4) {
      extra = 3;
    } else {
      return false;
    }
    if (extra > 0 && i + extra >= in.size()) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      if ((std::to_integer<unsigned>(in[i + k]) & 0xc0) != 0x80) return false;
    }
    i += extra + 1;
  }
  return true;
}

void Printer::print(const MessageView& m) {
  static constexpr char hex[] = "0123456789abcdef";
  switch (m_format) {
    case Format::json: {
      m_line = "{\"topic\":";
      append_json_string(m_line, m.topic());
      char num[96];
      std::snprintf(num, sizeof num, ",\"publisher\":\"%016llx\",\"seq\":%llu,\"ts_ns\":%lld,\"size\":%zu,\"payload\":",
                    static_cast<unsigned long long>(m.publisher_id()), static_cast<unsigned long long>(m.sequence()),
                    static_cast<long long>(m.timestamp_ns()), m.payload().size());
      m_line += num;
      if (is_printable_utf8(m.payload())) {
        append_json_string(m_line, m.payload_text());
      } else {
        m_line += '"';
        append_base64(m_line, m.payload());
        m_line += "\",\"encoding\":\"base64";
        m_line += '"';
      }
      m_line += "}\n";
      break;
    }
    case Format::text:
      m_line.assign(m.topic());
      m_line += ' ';
      m_line += std::to_string(m.sequence());
      m_line += ' ';
      m_line += m.payload_text();
      m_line += '\n';
      break;
    case Format::hex:
      m_line.clear();
      for (const auto b : m.bytes()) {
        m_line += hex[std::to_integer<unsigned>(b) >> 4];
        m_line += hex[std::to_integer<unsigned>(b) & 15];
      }
      m_line += '\n';
      break;
  }
  if (!m_direct) {
    std::fwrite(m_line.data(), 1, m_line.size(), stdout);
    return;
  }
  // One write(2): a regular file takes it whole (short only when the disk is full).
  std::size_t done = 0;
  while (done < m_line.size()) {
    const auto n = ::write(STDOUT_FILENO, m_line.data() + done, m_line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
}

void Printer::print_stats(const SubscriberStats& s) {
  std::printf(
      "{\"stats\":{\"received\":%llu,\"gaps\":%llu,\"dropped\":%llu,\"malformed\":%llu,\"oversize\":%llu,"
      "\"overflow_events\":%llu,\"publisher_restarts\":%llu,\"queue_high_water_bytes\":%llu,"
      "\"duplicates\":%llu,\"dead_lettered\":%llu,\"in_doubt\":%llu,\"publishers\":%llu,\"auth_rejected\":%llu}}\n",
      static_cast<unsigned long long>(s.received), static_cast<unsigned long long>(s.gaps),
      static_cast<unsigned long long>(s.dropped), static_cast<unsigned long long>(s.malformed),
      static_cast<unsigned long long>(s.oversize), static_cast<unsigned long long>(s.overflow_events),
      static_cast<unsigned long long>(s.publisher_restarts), static_cast<unsigned long long>(s.queue_high_water_bytes),
      static_cast<unsigned long long>(s.duplicates), static_cast<unsigned long long>(s.dead_lettered),
      static_cast<unsigned long long>(s.in_doubt), static_cast<unsigned long long>(s.publishers),
      static_cast<unsigned long long>(s.auth_rejected));
  std::fflush(stdout);
}

void Printer::flush() {
  std::fflush(stdout);
}

}  // namespace rill::cli
