// The durable state files (ack store, subscriber state file, group ledger, sequence mark)
// are decoded by their open(): a fuzz target writes its input into a file of a private
// scratch directory, at the size the format has, and opens that.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>

namespace rill::fuzz {

/// A directory of this process's own, removed at exit.
inline const std::filesystem::path& scratch_dir() {
  struct Dir {
    std::filesystem::path path;
    Dir() {
      std::string t = (std::filesystem::temp_directory_path() / "rill-fuzz.XXXXXX").string();
      if (::mkdtemp(t.data()) == nullptr) ::abort();
      path = t;
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path;
}

/// Replaces `path` with `data`, cut or zero-extended to `size` bytes (0: as it is). The
/// extension is a hole, so a large format (the group ledger) costs no memory.
inline void write_file(const std::filesystem::path& path, std::span<const std::uint8_t> data, std::size_t size = 0) {
  std::filesystem::remove(path);
  const auto n = size == 0 ? data.size() : std::min(size, data.size());
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(n));
  }
  if (size != 0) std::filesystem::resize_file(path, size);
}

}  // namespace rill::fuzz
