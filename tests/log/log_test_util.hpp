// Helpers shared by the log tests: temporary directories (TempDir) and record bodies that say what they are.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
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

/// What a killed writer reported on stdout, and how it ended (waitpid status).
struct WriterRound {
  std::string out;
  int status = 0;
};

/// Runs `argv` (argv[0] a path) with stdout on a pipe, reads what it reports, and SIGKILLs it
/// after `delay`. `before_kill`, when given, runs first with the child's pid; it returns true
/// when it reaped the child itself (its status then in `*status`).
inline WriterRound kill_writer(const std::vector<std::string>& argv, std::chrono::microseconds delay,
                               const std::function<bool(pid_t, int*)>& before_kill = {}) {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::execv(args[0], args.data());
    std::_Exit(127);
  }
  ::close(fds[1]);
  WriterRound round;
  const auto kill_at = std::chrono::steady_clock::now() + delay;
  bool killed = false;
  bool reaped = false;
  char buf[65536];
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (!killed && now >= kill_at) {
      if (before_kill) reaped = before_kill(pid, &round.status);
      ::kill(pid, SIGKILL);
      killed = true;
    }
    const auto until_kill = std::chrono::duration_cast<std::chrono::milliseconds>(kill_at - now).count();
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, killed ? 1000 : static_cast<int>(until_kill) + 1) > 0) {
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;  // EOF: the writer is gone
      round.out.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fds[0]);
  if (!reaped) ::waitpid(pid, &round.status, 0);
  return round;
}

}  // namespace logtest
