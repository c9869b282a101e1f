// Internal: a SQL job's checkpoint file: "RILLSQL1", the body's size and FNV-1a hash, then the
// positions (inputs, outputs) and the window operator's own checkpoint bytes (may be empty).
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>

#include "rill/sql_job.hpp"

namespace rill::sql::detail {

[[nodiscard]] std::string encode_state(const JobPositions& at, std::string_view op_bytes);
/// The positions and the operator's bytes; a message for a damaged or foreign file.
[[nodiscard]] std::expected<std::pair<JobPositions, std::string>, std::string> decode_state(std::string_view bytes);
/// Writes `bytes` to `path` through a temporary file, fsync, rename and an fsync of the directory.
[[nodiscard]] std::expected<void, std::string> write_atomically(const std::string& path, std::string_view bytes);
/// The whole file; a message when it cannot be read.
[[nodiscard]] std::expected<std::string, std::string> read_whole(const std::string& path);

}  // namespace rill::sql::detail
