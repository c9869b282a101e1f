// CurveZMQ key files for the tcp transport (`rill keygen`, ?curve_key=, ?curve_server=).
#pragma once

#include <string>
#include <string_view>

#include "rill/error.hpp"

namespace rill {

/// A CurveZMQ key pair, each key as its 40-character Z85 text.
struct CurveKeyPair {
  std::string public_key;
  std::string secret_key;
};

/// Makes a new key pair and writes `NAME.key` (the public line, then the secret line; mode
/// 0600) and `NAME.pub` (the public line; mode 0644). Refuses to overwrite either file.
[[nodiscard]] Result<CurveKeyPair> write_curve_key_files(std::string_view name);

/// Reads a key pair file: two Z85 lines, public then secret, that belong together. Refused
/// when group or others may read it (as ssh does with private keys).
[[nodiscard]] Result<CurveKeyPair> read_curve_key_pair(const std::string& path);

/// Reads a public key file: its first non-empty line, 40 Z85 characters (a `.pub`, or a
/// `.key` whose first line is the public key).
[[nodiscard]] Result<std::string> read_curve_public_key(const std::string& path);

/// True when `text` is a 40-character Z85 key.
[[nodiscard]] bool is_z85_key(std::string_view text) noexcept;

}  // namespace rill
