// Endpoint URIs: tcp://host:port, and later udp://, shm://, http://.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "rill/error.hpp"

namespace rill {

/// A parsed endpoint URI.
struct Endpoint {
  std::string scheme;  ///< "tcp", "udp", "shm", "http", "jetstream"
  std::string host;    ///< address, or the name for shm, or jetstream's HOST:PORT list
  std::uint16_t port = 0;
  std::string query;   ///< raw text after '?', if any
  std::string uri;     ///< the text it was parsed from

  /// Parses `text`; a clear error names what is wrong with it.
  [[nodiscard]] static Result<Endpoint> parse(std::string_view text);
};

}  // namespace rill
