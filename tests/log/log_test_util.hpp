// Helpers shared by the log tests: temporary directories (TempDir) and record bodies that say what they are.
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "../temp_dir.hpp"

namespace logtest {

using rilltest::TempDir;

inline std::span<const std::byte> bytes_of(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}
inline std::string_view text_of(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
/// "record N" padded with '.' to `size` bytes, so a reader can tell which record it got.
inline std::string body_for(std::uint64_t n, std::size_t size = 0) {
  std::string s = "record " + std::to_string(n);
  if (s.size() < size) s.append(size - s.size(), '.');
  return s;
}

}  // namespace logtest
