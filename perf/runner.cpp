// Two-process harness: the far side (echo / receiver) is a forked child, the near side
// runs in the caller. A pipe from child to parent carries the "ready" handshake and
// the receiver's measurement; every wait on the child has a deadline, and a child
// that overstays it is killed, so a broken side yields an error string, not a hang.
//
// Child -> parent pipe protocol (all host byte order, same machine):
//   'R'                                  far side is ready (at most once)
//   'O' <double msgs_per_s> <u64 lost>   throughput result
//   'E' <u32 len> <len bytes>            far side failed, with the reason
//   EOF                                  child exited
#include "perf_detail.hpp"
#include "perf_kit.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <spdlog/fmt/fmt.h>
#include <string_view>
#include <thread>

namespace rill::perf {
namespace {

using detail::Clock;
using namespace std::chrono_literals;

constexpr std::size_t ok_record_size = 1 + sizeof(double) + sizeof(std::uint64_t);
constexpr std::size_t err_header_size = 1 + sizeof(std::uint32_t);

// ---- child side -------------------------------------------------------------------

void write_all(int fd, const void* data, std::size_t len) {
  const auto* p = static_cast<const char*>(data);
  while (len > 0) {
    const ssize_t n = ::write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // parent gone: nobody left to tell
    p += n;
    len -= static_cast<std::size_t>(n);
  }
}

void write_error(int fd, std::string_view text) {
  const auto len = static_cast<std::uint32_t>(std::min<std::size_t>(text.size(), 4096));
  std::string rec(err_header_size + len, '\0');
  rec[0] = 'E';
  std::memcpy(rec.data() + 1, &len, sizeof len);
  std::memcpy(rec.data() + err_header_size, text.data(), len);
  write_all(fd, rec.data(), rec.size());
}

void write_ok(int fd, double rate, std::uint64_t lost) {
  char rec[ok_record_size];
  rec[0] = 'O';
  std::memcpy(rec + 1, &rate, sizeof rate);
  std::memcpy(rec + 1 + sizeof rate, &lost, sizeof lost);
  write_all(fd, rec, sizeof rec);
}

// Runs `body` as the far side and never returns: _exit keeps the child out of the
// caller's main, static destructors and atexit handlers (which belong to the parent).
template <class Body>
[[noreturn]] void child_main(int wfd, pid_t parent, const PerfOptions& opts, Body&& body) {
  // If the parent dies (Ctrl-C, crash), do not leave a child spinning on a core.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);
  pin_side(opts.placement, 1);

  bool announced = false;
  const Link link{
      .ready =
          [wfd, &announced] {
            if (announced) return;
            announced = true;
            write_all(wfd, "R", 1);
          },
      .peer = [parent] { return ::getppid() == parent ? Peer::ready : Peer::gone; },
  };
  int code = 1;
  try {
    code = body(link);
  } catch (const std::exception& e) {
    write_error(wfd, std::string("exception: ") + e.what());
    code = 3;
  } catch (...) {
    write_error(wfd, "unknown exception");
    code = 3;
  }
  ::close(wfd);
  ::_exit(code);
}

// ---- parent side ------------------------------------------------------------------

// Parent's end of the pipe: buffers what the child wrote and decodes its state.
class ChildPipe {
 public:
  explicit ChildPipe(int fd) : m_fd(fd) {}
  ~ChildPipe() { ::close(m_fd); }
  ChildPipe(const ChildPipe&) = delete;
  ChildPipe& operator=(const ChildPipe&) = delete;

  // One non-blocking look; this is what Link::peer calls.
  Peer peer() {
    pump(0);
    return state();
  }

  // Waits until the child delivered a result record or closed the pipe, or deadline.
  // A deadline already past still takes one non-blocking look.
  void wait_finished(Clock::time_point deadline) {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      pump(static_cast<int>(std::clamp<long long>(left, 0, 100)));
      if (has_record() || m_eof || left <= 0) return;
    }
  }

  // The throughput result, or the child's error text, or empty when it sent nothing.
  std::optional<std::expected<ThroughputResult, std::string>> result() const {
    if (!has_record()) return std::nullopt;
    if (m_buf[0] == 'O') {
      ThroughputResult r;
      std::memcpy(&r.msgs_per_s, m_buf.data() + 1, sizeof r.msgs_per_s);
      std::memcpy(&r.lost, m_buf.data() + 1 + sizeof r.msgs_per_s, sizeof r.lost);
      return r;
    }
    return std::unexpected(m_buf.substr(err_header_size, error_len()));
  }

 private:
  void pump(int timeout_ms) {
    pollfd p{.fd = m_fd, .events = POLLIN, .revents = 0};
    const int rc = ::poll(&p, 1, timeout_ms);
    if (rc <= 0) return;  // timeout, or EINTR: caller loops
    char chunk[4096];
    const ssize_t n = ::read(m_fd, chunk, sizeof chunk);
    if (n > 0)
      m_buf.append(chunk, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR)
      m_eof = true;
    if (!m_ready && !m_buf.empty() && m_buf[0] == 'R') {
      m_ready = true;
      m_buf.erase(0, 1);
    }
  }

  std::uint32_t error_len() const {
    std::uint32_t len = 0;
    std::memcpy(&len, m_buf.data() + 1, sizeof len);
    return len;
  }

  bool has_record() const {
    if (m_buf.empty()) return false;
    if (m_buf[0] == 'O') return m_buf.size() >= ok_record_size;
    if (m_buf[0] == 'E') return m_buf.size() >= err_header_size && m_buf.size() >= err_header_size + error_len();
    return false;
  }

  Peer state() const {
    if (has_record()) return Peer::done;
    if (m_eof) return Peer::gone;
    return m_ready ? Peer::ready : Peer::starting;
  }

  int m_fd;
  std::string m_buf;
  bool m_ready = false;
  bool m_eof = false;
};

// Restores the caller's CPU mask when a run ends, so pinning for one run does not
// leak into the rest of the program (or into the next run's fork).
class AffinityGuard {
 public:
  AffinityGuard() { m_ok = ::sched_getaffinity(0, sizeof m_saved, &m_saved) == 0; }
  ~AffinityGuard() {
    if (m_ok) ::sched_setaffinity(0, sizeof m_saved, &m_saved);
  }
  AffinityGuard(const AffinityGuard&) = delete;
  AffinityGuard& operator=(const AffinityGuard&) = delete;

 private:
  cpu_set_t m_saved{};
  bool m_ok = false;
};

struct ChildExit {
  bool killed = false;
  int code = 0;    // exit code when it exited
  int signal = 0;  // terminating signal, if any
  std::string describe() const {
    if (killed) return "did not exit in time and was killed";
    if (code < 0) return "could not be waited for (status unknown)";
    if (signal != 0) return fmt::format("died of signal {} ({})", signal, ::strsignal(signal));
    return fmt::format("exited with code {}", code);
  }
  bool clean() const { return !killed && signal == 0 && code == 0; }
};

// Waits for the child until the deadline, then kills it: never blocks forever.
ChildExit reap(pid_t pid, Clock::time_point deadline) {
  ChildExit out;
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return {.killed = false, .code = -1, .signal = 0};  // not our child any more (SIGCHLD ignored?)
    if (Clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      out.killed = true;
      return out;
    }
    std::this_thread::sleep_for(1ms);
  }
  if (WIFEXITED(status)) out.code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) out.signal = WTERMSIG(status);
  return out;
}

// Forks; the child runs `far` and never returns. The parent gets the child's pid and
// the read end of the pipe.
template <class Far>
std::expected<std::pair<pid_t, int>, std::string> spawn(const PerfOptions& opts, Far&& far) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return std::unexpected(fmt::format("pipe2: {}", std::strerror(errno)));
  std::fflush(nullptr);  // or the child's copy of unflushed stdio could be written twice
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return std::unexpected(fmt::format("fork: {}", std::strerror(err)));
  }
  if (pid == 0) {
    ::close(fds[0]);
    child_main(fds[1], parent, opts, [&](const Link& link) { return far(fds[1], link); });
  }
  ::close(fds[1]);
  return std::pair{pid, fds[0]};
}

// Calls a side's function, turning exceptions into an error string.
template <class T, class Fn>
std::expected<T, std::string> call_safely(const Fn& fn, const PerfOptions& opts, const Link& link) {
  try {
    return fn(opts, link);
  } catch (const std::exception& e) {
    return std::unexpected(std::string("exception: ") + e.what());
  } catch (...) {
    return std::unexpected(std::string("unknown exception"));
  }
}

// A failed near side has usually stopped talking to the child already; give it a
// moment to notice and exit on its own before it is killed.
constexpr auto failure_grace = 200ms;

}  // namespace

std::expected<PingPongResult, std::string> run_pingpong(const PingPongRunner& runner, const PerfOptions& opts) {
  const std::string& name = runner.name;
  if (!runner.ping || !runner.echo) return std::unexpected(fmt::format("{}: pingpong runner is incomplete", name));

  auto spawned = spawn(opts, [&](int, const Link& link) { return runner.echo(opts, link); });
  if (!spawned) return std::unexpected(fmt::format("{}: {}", name, spawned.error()));
  const auto [pid, rfd] = *spawned;
  ChildPipe pipe(rfd);

  std::expected<std::vector<std::uint64_t>, std::string> samples;
  std::string placement_used;
  {
    AffinityGuard restore;
    placement_used = pin_side(opts.placement, 0);
    const Link link{.ready = [] {}, .peer = [&pipe] { return pipe.peer(); }};
    samples = call_safely<std::vector<std::uint64_t>>(runner.ping, opts, link);
  }

  // After a good run the echo side was told to stop and should exit promptly.
  const auto grace = samples ? std::chrono::duration_cast<Clock::duration>(detail::step_timeout(opts))
                             : std::chrono::duration_cast<Clock::duration>(failure_grace);
  const ChildExit child = reap(pid, Clock::now() + grace);
  // An echo side that threw left its reason in the pipe; say it along with how it ended.
  pipe.wait_finished(Clock::now());
  std::string echo_story = child.describe();
  if (const auto r = pipe.result(); r && !*r) echo_story += ": " + r->error();
  if (!samples) return std::unexpected(fmt::format("{} ping: {} (echo side {})", name, samples.error(), echo_story));
  if (!child.clean()) return std::unexpected(fmt::format("{}: echo side {}", name, echo_story));
  if (samples->size() != opts.count)
    return std::unexpected(fmt::format("{}: got {} samples, wanted {}", name, samples->size(), opts.count));

  PingPongResult out;
  out.rtt = percentiles_us(*samples);
  out.samples_ns = std::move(*samples);
  out.placement_used = std::move(placement_used);
  return out;
}

std::expected<ThroughputResult, std::string> run_throughput(const ThroughputRunner& runner, const PerfOptions& opts) {
  const std::string& name = runner.name;
  if (!runner.send || !runner.receive) return std::unexpected(fmt::format("{}: throughput runner is incomplete", name));

  auto spawned = spawn(opts, [&](int wfd, const Link& link) {
    auto r = runner.receive(opts, link);
    if (!r) {
      write_error(wfd, r.error());
      return 1;
    }
    write_ok(wfd, r->first, r->second);
    return 0;
  });
  if (!spawned) return std::unexpected(fmt::format("{}: {}", name, spawned.error()));
  const auto [pid, rfd] = *spawned;
  ChildPipe pipe(rfd);

  std::expected<void, std::string> sent;
  {
    AffinityGuard restore;
    pin_side(opts.placement, 0);
    const Link link{.ready = [] {}, .peer = [&pipe] { return pipe.peer(); }};
    sent = call_safely<void>(runner.send, opts, link);
  }

  // The receiver may still be draining what the sender queued ahead of it.
  pipe.wait_finished(Clock::now() + (sent ? detail::drain_budget(opts) : failure_grace));
  const auto result = pipe.result();
  const ChildExit child = reap(pid, Clock::now() + (result ? detail::step_timeout(opts) : failure_grace));

  if (result && !*result) return std::unexpected(fmt::format("{} receiver: {}", name, result->error()));
  if (!sent) return std::unexpected(fmt::format("{} sender: {} (receiver {})", name, sent.error(), child.describe()));
  if (!result) return std::unexpected(fmt::format("{}: receiver gave no result; it {}", name, child.describe()));
  if (!child.clean()) return std::unexpected(fmt::format("{}: receiver {}", name, child.describe()));
  return **result;
}

}  // namespace rill::perf
