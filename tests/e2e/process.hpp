// Child processes for end-to-end tests: spawn `rill`, capture its output, wait with a
// deadline, kill. Plus fresh loopback ports and the stats-line parsing the tests share.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rill::e2e {

using namespace std::chrono_literals;

/// A fresh directory under $TMPDIR (or /tmp), removed on destruction unless
/// RILL_E2E_KEEP is set in the environment (to look at a failed run's output).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return m_path; }
  [[nodiscard]] std::filesystem::path operator/(std::string_view name) const { return m_path / name; }

 private:
  std::filesystem::path m_path;
};

/// How a child ended.
struct ExitStatus {
  bool timed_out = false;           ///< wait() hit its deadline and killed it (SIGKILL)
  bool signaled = false;            ///< ended by a signal (ours or a crash)
  int code = -1;                    ///< exit code, when not signaled
  int signal = 0;                   ///< the signal, when signaled
  std::chrono::nanoseconds wall{};  ///< from spawn to the observed exit
  double cpu_seconds = 0;           ///< user + system CPU time the child used

  [[nodiscard]] bool ok() const noexcept { return !timed_out && !signaled && code == 0; }
  [[nodiscard]] double seconds() const noexcept { return std::chrono::duration<double>(wall).count(); }
  /// "exit 0", "signal 9 (timed out)", ... for test messages.
  [[nodiscard]] std::string describe() const;
};

/// One child process; stdin is /dev/null, stdout and stderr go to `<dir>/<name>.out`
/// and `<dir>/<name>.err`. The destructor SIGKILLs and reaps a child still running,
/// so a failing test never leaves processes behind. Not thread-safe.
class Process {
 public:
  /// Spawns `args[0]` (a path) with `args`. Throws std::system_error if it cannot.
  Process(std::vector<std::string> args, const std::filesystem::path& dir, std::string name);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  /// Waits until the child exits; past `timeout` it is SIGKILLed and reported as timed out.
  ExitStatus wait(std::chrono::milliseconds timeout);
  /// True while the child has not exited (reaps it when it has).
  [[nodiscard]] bool running();
  /// Sends `sig` to the child if it is still running.
  void kill(int sig = SIGKILL);

  [[nodiscard]] std::string out() const;  ///< everything it wrote to stdout so far
  [[nodiscard]] std::string err() const;  ///< everything it wrote to stderr so far
  [[nodiscard]] const std::filesystem::path& out_path() const noexcept { return m_out; }
  [[nodiscard]] const std::string& command_line() const noexcept { return m_command; }
  [[nodiscard]] pid_t pid() const noexcept { return m_pid; }

 private:
  void reaped(int status, const ::rusage& usage);

  pid_t m_pid = -1;
  std::string m_command;
  std::filesystem::path m_out;
  std::filesystem::path m_err;
  std::chrono::steady_clock::time_point m_start;
  std::optional<ExitStatus> m_exit;
};

/// The `rill` binary under test.
[[nodiscard]] std::string rill_cli();
/// Spawns `rill ARGS...` with its output in `dir` as `<name>.out` / `<name>.err`.
[[nodiscard]] std::unique_ptr<Process> spawn_rill(const TempDir& dir, const std::string& name,
                                                  std::vector<std::string> args);
/// A port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, closed).
[[nodiscard]] int free_port();
/// "tcp://127.0.0.1:<port>".
[[nodiscard]] std::string tcp_endpoint(int port);

/// Polls `condition` every few milliseconds until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

/// Whole contents of a file ("" when it does not exist).
[[nodiscard]] std::string read_file(const std::filesystem::path& path);
/// The lines of `text` (without their '\n').
[[nodiscard]] std::vector<std::string_view> lines(std::string_view text);

/// The last `{"stats":{...}}` line of an output, parsed into its counters.
struct Stats {
  bool found = false;
  std::string line;
  std::map<std::string, std::uint64_t, std::less<>> values;

  /// The counter `key`; throws std::out_of_range naming it when the line lacks it.
  [[nodiscard]] std::uint64_t operator[](std::string_view key) const;
};
[[nodiscard]] Stats parse_stats(std::string_view output);

/// The unsigned number after `"key":` in a one-line JSON object.
[[nodiscard]] std::optional<std::uint64_t> json_u64(std::string_view line, std::string_view key);
/// The string after `"key":"` (no escapes expected) in a one-line JSON object.
[[nodiscard]] std::optional<std::string_view> json_str(std::string_view line, std::string_view key);

}  // namespace rill::e2e
