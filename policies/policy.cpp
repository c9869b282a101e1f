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

namespace rill {

std::string_view to_string(DurabilityKind kind) {
  switch (kind) {
    case DurabilityKind::volatile_: return "volatile";
    case DurabilityKind::transient_local: return "transient-local";
    case DurabilityKind::persistent: return "persistent";
  }
  return "unknown";
}

Result<Durability> parse_durability(std::string_view text) {
  if (text == "volatile") return Durability::volatile_mode();
  if (text == "persistent") return Durability::persistent();
  if (text.starts_with("persistent:")) {
    const auto dir = text.substr(11);
    if (dir.empty()) return fail(Errc::invalid_argument, "persistent:DIR needs a directory");
    return Durability::persistent(std::string(dir));
  }
  if (text.starts_with("transient-local:")) {
    auto n = parse_count(text.substr(16), "transient-local");
    if (!n) return std::unexpected(n.error());
    if (*n > max_history_messages) {
      return fail(Errc::invalid_argument, "transient-local keeps at most " + std::to_string(max_history_messages) +
                                              " messages");
    }
    return Durability::transient_local(*n);
  }
  return fail(Errc::invalid_argument, "durability must be volatile, transient-local:N or persistent:DIR, got '" +
                                          std::string(text) + "'");
}

std::string to_string(const Durability& d) {
  switch (d.kind) {
    case DurabilityKind::volatile_: return "volatile";
    case DurabilityKind::transient_local: return "transient-local:" + std::to_string(d.history);
    case DurabilityKind::persistent: return d.dir.empty() ? "persistent" : "persistent:" + d.dir;
  }
  return "unknown";
}

Result<StartFrom> parse_start_from(std::string_view text) {
  if (text == "last-ack") return StartFrom::last_ack;
  if (text == "start") return StartFrom::start;
  if (text == "end") return StartFrom::end;
  return fail(Errc::invalid_argument, "--from must be start, end or last-ack, got '" + std::string(text) + "'");
}

}  // namespace rill
