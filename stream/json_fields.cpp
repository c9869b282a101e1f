// JSON payload fields (simdjson) and ISO-8601 timestamps: input from outside, so every
// failure is a nullopt for the source to count, never an exception or a crash.
#include <charconv>
#include <memory>

#include <simdjson.h>

#include "rill/stream/rill_io.hpp"

namespace rill::stream {

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's civil calendar
// algorithm, written from its published description).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool digits(std::string_view s, std::size_t at, std::size_t n, unsigned& out) noexcept {
  if (at + n > s.size()) return false;
  out = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + static_cast<unsigned>(s[i] - '0');
  }
  return true;
}

bool is_leap(unsigned y) noexcept { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// One parser per extractor: simdjson reuses its buffers across documents.
using ParserPtr = std::shared_ptr<simdjson::dom::parser>;

simdjson::simdjson_result<simdjson::dom::element> field(simdjson::dom::parser& p, const MessageView& m,
                                                        std::string_view name) {
  const auto bytes = m.payload();
  // realloc_if_needed: the payload has no padding of its own, so simdjson copies it.
  auto doc = p.parse(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), true);
  if (doc.error()) return doc.error();
  return doc.value_unsafe().at_key(name);
}

}  // namespace

std::optional<TimeMs> parse_iso8601_ms(std::string_view s) {
  unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  if (s.size() < 20 || !digits(s, 0, 4, y) || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't') || !digits(s, 11, 2, h) || s[13] != ':' ||
      !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, se)) {
    return std::nullopt;
  }
  static constexpr unsigned month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1 || d > month_days[mo - 1] + (mo == 2 && is_leap(y) ? 1 : 0) || h > 23 ||
      mi > 59 || se > 59) {
    return std::nullopt;
  }
  std::size_t at = 19;
  unsigned ms = 0;
  if (s[at] == '.') {
    // Fractional seconds: milliseconds from the first three digits, the rest ignored.
    std::size_t n = 0;
    for (++at; at < s.size() && s[at] >= '0' && s[at] <= '9'; ++at, ++n) {
      if (n < 3) ms = ms * 10 + static_cast<unsigned>(s[at] - '0');
    }
    if (n == 0) return std::nullopt;
    for (; n < 3; ++n) ms *= 10;
  }
  if (at + 1 != s.size() || (s[at] != 'Z' && s[at] != 'z')) return std::nullopt;
  const std::int64_t days = days_from_civil(y, mo, d);
  return ((days * 24 + h) * 60 + mi) * 60'000 + se * 1000 + ms;
}

TimeExtractor envelope_time() {
  return [](const MessageView& m) -> std::optional<TimeMs> {
    // floor division: timestamps before 1970 round down like every other event time
    const std::int64_t ns = m.timestamp_ns();
    return ns / 1'000'000 - (ns % 1'000'000 < 0 ? 1 : 0);
  };
}

TimeExtractor json_time(std::string name) {
  auto parser = std::make_shared<simdjson::dom::parser>();
  return [parser, name = std::move(name)](const MessageView& m) -> std::optional<TimeMs> {
    auto v = field(*parser, m, name);
    if (v.error()) return std::nullopt;
    const auto e = v.value_unsafe();
    if (std::int64_t ms = 0; e.get_int64().get(ms) == simdjson::SUCCESS) return ms;
    if (std::string_view s; e.get_string().get(s) == simdjson::SUCCESS) return parse_iso8601_ms(s);
    return std::nullopt;
  };
}

Parse json_key_value(std::string key_field, std::string value_field) {
  auto parser = std::make_shared<simdjson::dom::parser>();
  return [parser, key_field = std::move(key_field),
          value_field = std::move(value_field)](const MessageView& m) -> std::optional<KeyValue> {
    const auto bytes = m.payload();
    auto doc = parser->parse(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), true);
    if (doc.error()) return std::nullopt;
    const auto root = doc.value_unsafe();
    KeyValue kv;
    auto k = root.at_key(key_field);
    auto v = root.at_key(value_field);
    if (k.error() || v.error()) return std::nullopt;
    if (std::string_view s; k.get_string().get(s) == simdjson::SUCCESS) {
      kv.key = s;
    } else if (std::int64_t i = 0; k.get_int64().get(i) == simdjson::SUCCESS) {
      kv.key = std::to_string(i);
    } else {
      return std::nullopt;
    }
    if (v.get_double().get(kv.value) != simdjson::SUCCESS) return std::nullopt;
    return kv;
  };
}

}  // namespace rill::stream
