#include "rill/policy.hpp"

#include <charconv>

namespace rill {

namespace {

Result<std::size_t> parse_count(std::string_view text, std::string_view what) {
  std::size_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value == 0) {
    return fail(Errc::invalid_argument, std::string(what) + " needs a positive whole number, got '" +
                                            std::string(text) + "'");
  }
  return value;
}

}  // namespace

Result<Policy> parse_policy(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    return fail(Errc::invalid_argument,
                "policy must be drop-oldest:N, drop-newest:N, buffer:BYTES or backpressure:N, got '" +
                    std::string(text) + "'");
  }
  const auto name = text.substr(0, colon);
  auto count = parse_count(text.substr(colon + 1), name);
  if (!count) return std::unexpected(count.error());
  Policy p;
  if (name == "drop-oldest") {
    p = Policy::drop_oldest(*count);
  } else if (name == "drop-newest") {
    p = Policy::drop_newest(*count);
  } else if (name == "buffer") {
    return Policy::buffer(*count);
  } else if (name == "backpressure") {
    p = Policy::backpressure(*count);
  } else {
    return fail(Errc::invalid_argument, "unknown policy '" + std::string(name) +
                                            "' (drop-oldest, drop-newest, buffer, backpressure)");
  }
  if (p.capacity > max_policy_messages) {
    return fail(Errc::invalid_argument,
                std::string(name) + " capacity is at most " + std::to_string(max_policy_messages));
  }
  return p;
}

std::string to_string(const Policy& policy) {
  switch (policy.kind) {
    case PolicyKind::drop_oldest: return "drop-oldest:" + std::to_string(policy.capacity);
    case PolicyKind::drop_newest: return "drop-newest:" + std::to_string(policy.capacity);
    case PolicyKind::buffer: return "buffer:" + std::to_string(policy.capacity);
    case PolicyKind::backpressure: return "backpressure:" + std::to_string(policy.capacity);
  }
  return "unknown";
}

}  // namespace rill
