// Internal: a checkpoint file's envelope (magic, payload length, FNV-1a 64 of the payload)
// and its atomic replacement on disk. Used by the join and CEP checkpoints; the window operator's
// checkpoint.cpp has the same layout with its own copy.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "rill/error.hpp"

namespace rill::stream::detail {

/// FNV-1a 64 of `bytes`.
[[nodiscard]] std::uint64_t fnv1a(std::string_view bytes) noexcept;
/// magic (8 bytes) + payload length (u64 LE) + fnv1a(payload) (u64 LE) + payload.
[[nodiscard]] std::string seal(std::string_view magic, std::string_view payload);
/// The payload of sealed bytes; corrupt when the magic, length or checksum do not match.
[[nodiscard]] Result<std::string_view> unseal(std::string_view magic, std::string_view bytes);
/// Writes `bytes` to `path` atomically: a temporary file, fsync, rename, fsync of the directory.
[[nodiscard]] Result<void> write_file_atomic(const std::string& path, std::string_view bytes);
/// The whole file; io_error when it cannot be read.
[[nodiscard]] Result<std::string> read_file(const std::string& path);

}  // namespace rill::stream::detail
