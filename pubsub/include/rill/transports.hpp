// The transports compiled into this build of librill, and what each can carry.
#pragma once

#include <string_view>
#include <vector>

namespace rill {

/// One compiled transport (`rill transports` prints these).
struct TransportInfo {
  std::string_view scheme;   ///< endpoint URI scheme: "tcp", "shm", "udp"
  std::string_view summary;  ///< one line: what it is and its endpoint form
  std::string_view notes;    ///< limits worth knowing (may be empty)
  bool zero_copy_loans = false;  ///< loan() is the memory the message is sent from
  bool history = false;          ///< transient_local / persistent publishers, durable subscriptions
  bool groups = false;           ///< consumer groups
  bool backpressure = false;     ///< backpressure(N) slows the publisher
};

/// Every transport compiled in, in registration order. Thread-safe; the views live as long
/// as the program.
[[nodiscard]] std::vector<TransportInfo> transports();

}  // namespace rill
