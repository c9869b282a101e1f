#include "process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace rill::e2e {

namespace {

using clock = std::chrono::steady_clock;

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/rill-e2e-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) throw_errno(errno, "mkdtemp " + templ);
  m_path = templ;
}

TempDir::~TempDir() {
  if (std::getenv("RILL_E2E_KEEP") != nullptr) return;
  std::error_code ec;
  std::filesystem::remove_all(m_path, ec);
}

std::string ExitStatus::describe() const {
  std::string s = signaled ? "signal " + std::to_string(signal) : "exit " + std::to_string(code);
  if (timed_out) s += " (timed out, killed)";
  return s;
}

Process::Process(std::vector<std::string> args, const std::filesystem::path& dir, std::string name)
    : m_out(dir / (name + ".out")), m_err(dir / (name + ".err")) {
  for (const auto& a : args) m_command += (m_command.empty() ? "" : " ") + a;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, m_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, m_err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  // The child starts with default signal dispositions whatever the test runner set.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigdefault(&attr, &all);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  m_start = clock::now();
  const int rc = ::posix_spawn(&m_pid, argv[0], &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    m_pid = -1;
    throw_errno(rc, "posix_spawn " + m_command);
  }
}

Process::~Process() {
  if (m_pid > 0 && !m_exit) {
    ::kill(m_pid, SIGKILL);
    int status = 0;
    while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

void Process::reaped(int status, const ::rusage& usage) {
  ExitStatus e;
  e.wall = clock::now() - m_start;
  const auto secs = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  e.cpu_seconds = secs(usage.ru_utime) + secs(usage.ru_stime);
  if (WIFSIGNALED(status)) {
    e.signaled = true;
    e.signal = WTERMSIG(status);
  } else {
    e.code = WEXITSTATUS(status);
  }
  m_exit = e;
}

bool Process::running() {
  if (m_exit) return false;
  int status = 0;
  ::rusage usage{};
  const pid_t r = ::wait4(m_pid, &status, WNOHANG, &usage);
  if (r == m_pid) {
    reaped(status, usage);
    return false;
  }
  return true;
}

ExitStatus Process::wait(std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  while (running()) {
    if (clock::now() >= deadline) {
      ::kill(m_pid, SIGKILL);
      int status = 0;
      ::rusage usage{};
      while (::wait4(m_pid, &status, 0, &usage) < 0 && errno == EINTR) {
      }
      reaped(status, usage);
      m_exit->timed_out = true;
      break;
    }
    // 1 ms granularity is plenty for the wall times the tests compare (seconds).
    std::this_thread::sleep_for(1ms);
  }
  return *m_exit;
}

void Process::kill(int sig) {
  if (running()) ::kill(m_pid, sig);
}

std::string Process::out() const {
  return read_file(m_out);
}
std::string Process::err() const {
  return read_file(m_err);
}

std::string rill_cli() {
  return RILL_CLI_PATH;
}

std::unique_ptr<Process> spawn_rill(const TempDir& dir, const std::string& name, std::vector<std::string> args) {
  args.insert(args.begin(), rill_cli());
  return std::make_unique<Process>(std::move(args), dir.path(), name);
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw_errno(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int err = errno;
    ::close(fd);
    throw_errno(err, "bind 127.0.0.1:0");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string tcp_endpoint(int port) {
  return "tcp://127.0.0.1:" + std::to_string(port);
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  while (!condition()) {
    if (clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return std::move(s).str();
}

std::vector<std::string_view> lines(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    out.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

std::uint64_t Stats::operator[](std::string_view key) const {
  const auto it = values.find(key);
  if (it == values.end()) {
    throw std::out_of_range("stats line lacks \"" + std::string(key) + "\": " + (found ? line : "<no stats line>"));
  }
  return it->second;
}

Stats parse_stats(std::string_view output) {
  Stats s;
  const auto at = output.rfind("{\"stats\":{");
  if (at == std::string_view::npos) return s;
  auto line = output.substr(at);
  line = line.substr(0, line.find('\n'));
  s.found = true;
  s.line = line;
  // Counters are flat "key":N pairs inside the inner object.
  std::size_t pos = std::string_view("{\"stats\":{").size();
  while (pos < line.size()) {
    const auto k0 = line.find('"', pos);
    if (k0 == std::string_view::npos) break;
    const auto k1 = line.find('"', k0 + 1);
    if (k1 == std::string_view::npos || k1 + 1 >= line.size() || line[k1 + 1] != ':') break;
    const auto key = line.substr(k0 + 1, k1 - k0 - 1);
    if (auto v = json_u64(line.substr(k0), key)) s.values.emplace(std::string(key), *v);
    pos = k1 + 2;
  }
  return s;
}

namespace {

// `"key":` (plus `"` for a string value), appended piecewise: GCC 12 warns falsely
// (-Wrestrict, PR 105329) on `"literal" + std::string`.
std::string json_key(std::string_view key, bool string_value) {
  std::string needle(1, '"');
  needle += key;
  needle += "\":";
  if (string_value) needle += '"';
  return needle;
}

}  // namespace

std::optional<std::uint64_t> json_u64(std::string_view line, std::string_view key) {
  const std::string needle = json_key(key, false);
  const auto at = line.find(needle);
  if (at == std::string_view::npos) return std::nullopt;
  std::size_t i = at + needle.size();
  if (i >= line.size() || line[i] < '0' || line[i] > '9') return std::nullopt;
  std::uint64_t v = 0;
  for (; i < line.size() && line[i] >= '0' && line[i] <= '9'; ++i)
    v = v * 10 + static_cast<std::uint64_t>(line[i] - '0');
  return v;
}

std::optional<std::string_view> json_str(std::string_view line, std::string_view key) {
  const std::string needle = json_key(key, true);
  const auto at = line.find(needle);
  if (at == std::string_view::npos) return std::nullopt;
  const auto start = at + needle.size();
  const auto end = line.find('"', start);
  if (end == std::string_view::npos) return std::nullopt;
  return line.substr(start, end - start);
}

}  // namespace rill::e2e
