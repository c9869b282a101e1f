#include "rill/error.hpp"

#include <cstring>

namespace rill {

std::string_view to_string(Errc code) noexcept {
  switch (code) {
    case Errc::would_block: return "would_block";
    case Errc::timed_out: return "timed_out";
    case Errc::not_connected: return "not_connected";
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::unsupported: return "unsupported";
    case Errc::address_in_use: return "address_in_use";
    case Errc::malformed: return "malformed";
    case Errc::too_large: return "too_large";
    case Errc::closed: return "closed";
    case Errc::io_error: return "io_error";
    case Errc::incompatible: return "incompatible";
    case Errc::permission_denied: return "permission_denied";
    case Errc::exhausted: return "exhausted";
    case Errc::no_space: return "no_space";
    case Errc::corrupt: return "corrupt";
  }
  return "unknown";
}

std::string Error::message() const {
  std::string out{to_string(code)};
  if (!detail.empty()) {
    out += ": ";
    out += detail;
  }
  if (sys != 0) {
    out += " (";
    out += std::strerror(sys);
    out += ")";
  }
  return out;
}

}  // namespace rill
