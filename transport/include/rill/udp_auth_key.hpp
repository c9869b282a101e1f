// Group key files for authenticated udp endpoints (`rill keygen --udp`, ?auth_key_file=).
#pragma once

#include <cstdint>
#include <string>

#include "rill/error.hpp"

namespace rill {

/// Writes a new udp group key file: 32 random bytes as 64 hex digits and a newline, mode
/// 0600. Refuses to overwrite. Returns the key's id (the 16-bit name datagrams carry).
[[nodiscard]] Result<std::uint16_t> write_udp_auth_key(const std::string& path);

}  // namespace rill
