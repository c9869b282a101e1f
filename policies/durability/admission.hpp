// Admission: whether a publisher takes a subscription, and where it starts. Written once for
// every transport: each decodes the request from its own wire (tcp SUBSCRIBE, udp STATUS, an
// shm slot) and answers with its own REJECT or WELCOME, but the decision is made here.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "history.hpp"
#include "rill/policy.hpp"

namespace rill::detail {

/// Why a publisher refuses a subscription (the values are shm's slot encoding).
enum class Refusal : std::uint32_t {
  none = 0,
  durability = 1,  ///< it asks for more durability than the publisher offers (as in DDS: never downgraded)
  malformed = 2,   ///< a request no rill subscriber writes (a durable or group name that names no file)
};

/// What a subscription asks for, as its transport decoded it.
struct AdmissionRequest {
  std::uint64_t subscription_id = 0;
  DurabilityKind requested = DurabilityKind::volatile_;
  StartFrom from = StartFrom::last_ack;
  std::uint32_t history_limit = 0;  ///< transient_local: at most this many (0: all that is kept)
  std::string_view durable_name{};  ///< persistent: whose acknowledged position to start from ("": none)
  std::string_view group{};         ///< consumer group ("": none)
};

/// Where an admitted subscription starts.
struct SubscriptionStart {
  std::uint64_t first = 0;  ///< the first sequence it is sent (its WELCOME's next_seq)
  std::uint64_t lost = 0;   ///< asked for but deleted by retention, or unreadable: reported as a gap
  std::unique_ptr<HistoryCursor> cursor;  ///< set when it catches up from `first` to the live sequence
};

/// A durable or group name names a file on the subscriber's side: 1-128 of [A-Za-z0-9._-],
/// not starting with '.'. The subscriber checks its own (Node); the publisher checks again.
[[nodiscard]] bool file_safe_name(std::string_view name) noexcept;

/// Refusal::none when a publisher offering `offered` takes `r`; otherwise why not, with the
/// reason in words in `*reason` (for the REJECT and the one log line).
[[nodiscard]] Refusal check_request(DurabilityKind offered, const AdmissionRequest& r, std::string_view* reason);

/// Where an admitted subscription that is not a group member starts: live (`live` is the
/// publisher's next sequence) for volatile, else from the history (`history` may be nullptr
/// only for volatile requests). The message being published right now may already be in the
/// history; it goes out live. `who` names the publisher in the log line ("publisher 0123...").
[[nodiscard]] SubscriptionStart start_subscription(History* history, std::uint64_t live, const AdmissionRequest& r,
                                                   std::string_view who);

}  // namespace rill::detail
