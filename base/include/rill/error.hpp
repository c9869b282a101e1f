// rill::Error and the std::expected aliases every fallible call returns.
#pragma once

#include <expected>
#include <string>
#include <string_view>

namespace rill {

/// What went wrong; would-block, timed-out and not-connected are ordinary values.
enum class Errc {
  would_block = 1,   ///< nothing available right now (non-blocking call)
  timed_out,         ///< a deadline passed (publish under backpressure, waits)
  not_connected,     ///< no peer to talk to yet
  invalid_argument,  ///< caller passed something unusable (bad option, bad URI)
  unsupported,       ///< endpoint scheme or feature not built in
  address_in_use,    ///< bind failed because someone else holds the address
  malformed,         ///< bytes from a peer failed verification
  too_large,         ///< message exceeds the configured size limit
  closed,            ///< the object or its node was shut down
  io_error,          ///< the OS or ZeroMQ reported a failure (see sys)
  incompatible,      ///< peer or options cannot work together (versions, durability)
  permission_denied, ///< the OS refused access (e.g. a shared-memory segment's mode)
  exhausted,         ///< a bounded resource is used up (e.g. every shm chunk is held)
  no_space,          ///< the disk (or quota) is full; nothing was written, retry once space is freed
  corrupt,           ///< stored data failed its checksum or structure check (the detail names file and offset)
};

/// An error code, the errno behind it when there is one, and a human detail.
struct Error {
  Errc code{};
  int sys = 0;
  std::string detail;

  /// One line: "<code name>: <detail> (<strerror>)".
  [[nodiscard]] std::string message() const;
};

/// The name of an error code, e.g. "timed_out".
[[nodiscard]] std::string_view to_string(Errc code) noexcept;

template <class T>
using Result = std::expected<T, Error>;

/// Shorthand for an unexpected value: `return fail(Errc::timed_out);`.
[[nodiscard]] inline std::unexpected<Error> fail(Errc code, std::string detail = {}, int sys = 0) {
  return std::unexpected(Error{code, sys, std::move(detail)});
}

}  // namespace rill
