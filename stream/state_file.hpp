// Internal: checkpoint files, written atomically and read whole; the checksum they carry.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "rill/error.hpp"

namespace rill::stream::detail {

/// FNV-1a 64 of `bytes`: the checkpoint header's checksum.
[[nodiscard]] std::uint64_t fnv1a(std::string_view bytes) noexcept;
/// Replaces `path` with `bytes` so that a crash leaves the old file or the new one: a
/// temporary file, fsync, rename, fsync of the directory. io_error / no_space.
[[nodiscard]] Result<void> write_file_atomic(const std::string& path, std::string_view bytes);
/// The whole file; io_error when unreadable.
[[nodiscard]] Result<std::string> read_file(const std::string& path);

}  // namespace rill::stream::detail
