// Helpers shared by the log tests: temporary directories (TempDir) and record bodies that say what they are.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "rill/log.hpp"

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

/// The writer process of the crash and power-loss tests: 4 threads append "PID THREAD I"
/// bodies until killed and, once an append returned, report it on stdout as "SEQ BODY\n"
/// (one write(2) per line: lines from the threads never interleave in the pipe), waiting
/// `pace` between appends. Exits 4 when an append fails, 5 when stdout does.
inline int run_writer(rill::Log& log, std::chrono::microseconds pace) {
  const long pid = ::getpid();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (std::uint64_t i = 0;; ++i) {
        const std::string body = std::to_string(pid) + " " + std::to_string(t) + " " + std::to_string(i);
        auto r = log.append(bytes_of(body));
        if (!r) {
          std::fprintf(stderr, "writer: append: %s\n", r.error().message().c_str());
          std::_Exit(4);
        }
        const std::string line = std::to_string(*r) + " " + body + "\n";
        if (::write(1, line.data(), line.size()) < 0) std::_Exit(5);
        if (pace.count() > 0) std::this_thread::sleep_for(pace);
      }
    });
  }
  for (auto& t : threads) t.join();
  return 0;
}

}  // namespace logtest
