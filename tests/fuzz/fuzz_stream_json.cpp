// Fuzz target: the stream source's payload readers (rill::stream json_time,
// json_key_value, parse_iso8601_ms) over arbitrary payload bytes. Property: nothing
// crashes, and a parsed ISO-8601 time is in range and of the right form.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "fuzz_check.hpp"
#include "rill/message_builder.hpp"
#include "rill/stream/rill_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto ms = rill::stream::parse_iso8601_ms(text)) {
    // Years 0000..9999 only: within about +-10,000 years of 1970.
    rill::fuzz::expect(*ms > -70'000LL * 365 * 86'400'000 && *ms < 10'000LL * 366 * 86'400'000, "iso time range");
    rill::fuzz::expect(text.size() >= 20 && (text.back() == 'Z' || text.back() == 'z'), "iso form");
  }
  // The payload as a message's raw payload, as a subscriber would hand it over.
  static rill::MessageBuilder builder;
  builder.reset();
  const auto env = builder.finish_raw(std::as_bytes(std::span(data, size)), {.topic = "t", .headers = {}});
  auto verified = rill::verify_envelope(env);
  rill::fuzz::expect(verified.has_value(), "own envelope verifies");
  const rill::MessageView m(*verified, env);
  static const auto time = rill::stream::json_time("ts");
  static const auto kv = rill::stream::json_key_value("k", "v");
  // Any bytes: a value or nullopt, never a crash or an exception.
  (void)time(m);
  if (auto r = kv(m)) rill::fuzz::expect(size >= 13, "a key and a value need at least {\"k\":1,\"v\":1}");
  return 0;
}
