// Helpers of the durability end-to-end tests: work directories on tmpfs, subscribers
// appending to one output file across restarts, and parsing of `rill sub` json lines.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "process.hpp"

namespace rill::e2e {

/// A TempDir on /dev/shm (tmpfs) when it exists, so fsync `always` costs no disk flush.
inline TempDir shm_temp_dir() {
  if (std::filesystem::is_directory("/dev/shm")) ::setenv("TMPDIR", "/dev/shm", 1);
  return TempDir();
}

/// A reliable udp endpoint on loopback: a multicast group of its own per call and process,
/// on a port the OS just had free.
inline std::string udp_endpoint() {
  static unsigned k = 0;
  ++k;
  const auto pid = static_cast<unsigned>(::getpid());
  return "udp://239.251." + std::to_string(pid % 250) + "." + std::to_string(k % 250 + 1) + ":" +
         std::to_string(free_port()) + "?iface=127.0.0.1&reliable=1";
}

/// Spawns `rill ARGS...` with stdout appended to `out` (opened O_APPEND by the shell, then
/// exec'ed: the child's pid is rill's own, so kill() hits it); stderr in `<dir>/<name>.err`.
inline std::unique_ptr<Process> spawn_rill_appending(const TempDir& dir, const std::string& name,
                                                     const std::vector<std::string>& args,
                                                     const std::filesystem::path& out) {
  std::string cmd = "exec '" + rill_cli() + "'";
  for (const auto& a : args) cmd += " '" + a + "'";  // test arguments hold no quotes
  cmd += " >> '" + out.string() + "'";
  return std::make_unique<Process>(std::vector<std::string>{"/bin/sh", "-c", cmd}, dir.path(), name);
}

/// Spawns `rill ARGS...` with stdin read from `in`.
inline std::unique_ptr<Process> spawn_rill_stdin(const TempDir& dir, const std::string& name,
                                                 const std::vector<std::string>& args,
                                                 const std::filesystem::path& in) {
  std::string cmd = "exec '" + rill_cli() + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " < '" + in.string() + "'";
  return std::make_unique<Process>(std::vector<std::string>{"/bin/sh", "-c", cmd}, dir.path(), name);
}

/// One message line of `rill sub --format json`.
struct Delivered {
  std::string publisher;
  std::uint64_t seq = 0;
  std::string payload;
};

/// The message lines of a `rill sub` output (stats and other lines skipped); lines that
/// look like messages but do not parse are counted in `bad`.
struct DeliveredLines {
  std::vector<Delivered> messages;
  std::size_t bad = 0;
  std::size_t stats_lines = 0;
};

inline DeliveredLines parse_delivered(std::string_view text) {
  DeliveredLines r;
  for (auto line : lines(text)) {
    if (line.empty()) continue;
    if (line.starts_with("{\"stats\":")) {
      ++r.stats_lines;
      continue;
    }
    auto pub = json_str(line, "publisher");
    auto seq = json_u64(line, "seq");
    auto payload = json_str(line, "payload");
    if (!line.starts_with("{\"topic\":") || !line.ends_with("}") || !pub || !seq) {
      ++r.bad;
      continue;
    }
    r.messages.push_back({std::string(*pub), *seq, payload ? std::string(*payload) : std::string()});
  }
  return r;
}

/// The first line of `text` that starts with `prefix` ("" when none).
inline std::string first_line_with(std::string_view text, std::string_view prefix) {
  for (auto line : lines(text)) {
    if (line.starts_with(prefix)) return std::string(line);
  }
  return {};
}

}  // namespace rill::e2e
