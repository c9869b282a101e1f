#include "admission.hpp"

#include <algorithm>
#include <string>

#include "base/logging.hpp"

namespace rill::detail {

bool file_safe_name(std::string_view name) noexcept {
  return !name.empty() && name.size() <= 128 && name.front() != '.' && std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                  c == '.';
         });
}

Refusal check_request(DurabilityKind offered, const AdmissionRequest& r, std::string_view* reason) {
  if (r.requested > offered) {
    *reason = "the publisher offers less durability than requested";
    return Refusal::durability;
  }
  if (!r.durable_name.empty() && !file_safe_name(r.durable_name)) {
    *reason = "a durable name that is not one";
    return Refusal::malformed;
  }
  // A durable group's name is stored in the ack store ("group:NAME"): the file-safe rule too.
  if (r.group.find('\0') != std::string_view::npos ||
      (!r.group.empty() && r.requested == DurabilityKind::persistent && !file_safe_name(r.group))) {
    *reason = "a consumer group name that is not one";
    return Refusal::malformed;
  }
  return Refusal::none;
}

SubscriptionStart start_subscription(History* history, std::uint64_t live, const AdmissionRequest& r,
                                     std::string_view who) {
  SubscriptionStart out;
  out.first = live;
  if (history == nullptr || r.requested == DurabilityKind::volatile_) return out;
  HistoryStart start;
  if (r.requested == DurabilityKind::transient_local) {
    start = history->start_for(StartFrom::start, {}, r.history_limit);
    start.lost = 0;  // "the last N kept": nothing it asked for is missing
  } else {
    start = history->start_for(r.from, r.durable_name, 0);
  }
  out.lost = start.lost;
  out.first = std::min(start.from, live);
  if (out.first == live) return out;
  auto cursor = history->cursor(out.first);
  if (!cursor) {
    log().error("{}: cannot read history from {} for subscription {:016x}: {}", who, out.first, r.subscription_id,
                cursor.error().message());
    out.lost += live - out.first;  // it starts live; what it cannot be sent is reported as lost
    out.first = live;
    return out;
  }
  out.cursor = std::move(*cursor);
  log().info("{}: subscription {:016x} catches up from {} (live at {}){}", who, r.subscription_id, out.first, live,
             out.lost > 0 ? " after " + std::to_string(out.lost) + " messages deleted by retention" : std::string());
  return out;
}

}  // namespace rill::detail
