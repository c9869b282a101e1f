// Mounting lazyfs (lazyfs.cpp) from a doctest test: the daemon's life, the power cut, its
// counters, and the checks that tell a test to skip (exit 77) where FUSE is not available.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef RILL_LAZYFS
#error "RILL_LAZYFS (the lazyfs binary, or empty) must be defined by the build"
#endif

namespace lazyfs {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Runs a program and waits for it; its exit status (-1 when it could not start).
inline int run(const std::vector<std::string>& argv) {
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::_Exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// lazyfs mounted over a backing directory for the life of the object: unmounted with
// fusermount3 -u on destruction, also when a check failed (doctest unwinds through here).
class LazyFs {
 public:
  LazyFs(std::string backing, std::string mountpoint) : m_backing(std::move(backing)), m_mnt(std::move(mountpoint)) {}
  LazyFs(const LazyFs&) = delete;
  LazyFs& operator=(const LazyFs&) = delete;

  ~LazyFs() { unmount(); }

  // The machine comes back: unmounted and mounted again, so the kernel keeps no page of the
  // old mount (a mapping's dirty pages of a killed process cannot be written back after the
  // cut through a new handle). lazyfs's counters start again from 0.
  void remount() {
    unmount();
    mount();
  }

  void unmount() {
    if (m_pid <= 0) return;
    run({"fusermount3", "-u", m_mnt});
    // The daemon exits once unmounted; should it hang, it is killed and the mount detached.
    const auto deadline = Clock::now() + 10s;
    int status = 0;
    while (::waitpid(m_pid, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        std::fprintf(stderr, "lazyfs did not exit after unmount: killed\n");
        ::kill(m_pid, SIGKILL);
        ::waitpid(m_pid, &status, 0);
        run({"fusermount3", "-u", "-z", m_mnt});
        break;
      }
      std::this_thread::sleep_for(5ms);
    }
    m_pid = -1;
  }

  // Starts the daemon in the foreground (-f), single-threaded (-s), and waits for the mount.
  void mount() {
    m_pid = ::fork();
    REQUIRE(m_pid >= 0);
    if (m_pid == 0) {
      ::execl(RILL_LAZYFS, RILL_LAZYFS, m_backing.c_str(), m_mnt.c_str(), "-f", "-s", static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    const auto deadline = Clock::now() + 10s;
    struct stat st {};
    while (::stat(control().c_str(), &st) != 0) {
      int status = 0;
      if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
        m_pid = -1;
        FAIL("lazyfs exited before mounting (status " << status << ")");
      }
      REQUIRE_MESSAGE(Clock::now() < deadline, "lazyfs did not mount " << m_mnt << " within 10 s");
      std::this_thread::sleep_for(5ms);
    }
  }

  // The power cut: every write not yet fsync'ed is gone once this returns. With `tear_seed`, the
  // power went while the unsynced data was being written back: a prefix of each file's survives.
  void cut(std::optional<std::uint64_t> tear_seed = std::nullopt) const {
    const int fd = ::open(control().c_str(), O_WRONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    const std::string cmd = tear_seed ? "tear " + std::to_string(*tear_seed) : "cut";
    const bool ok = ::write(fd, cmd.data(), cmd.size()) == static_cast<ssize_t>(cmd.size());
    ::close(fd);
    REQUIRE_MESSAGE(ok, "lazyfs refused the cut: " << std::strerror(errno));
  }

  // The control file's counters ("dropped_bytes", "stale_ops" ...).
  [[nodiscard]] std::map<std::string, std::uint64_t> counters() const {
    std::map<std::string, std::uint64_t> out;
    const int fd = ::open(control().c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    char buf[1024];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    ::close(fd);
    std::istringstream in(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0));
    std::string name;
    std::uint64_t value = 0;
    while (in >> name >> value) out[name] = value;
    return out;
  }

  [[nodiscard]] const std::string& mountpoint() const noexcept { return m_mnt; }

 private:
  [[nodiscard]] std::string control() const { return m_mnt + "/.lazyfs"; }

  std::string m_backing;
  std::string m_mnt;
  pid_t m_pid = -1;
};

// A reboot, as the sequence mark sees one: the boot id it stored is no longer this boot's.
// Written to the backing file, under lazyfs (which holds nothing unsynced after the cut): the
// disk as the next boot finds it. The next open through the mount drops any cached page.
inline void change_boot_id(const std::string& backing_path) {
  const int fd = ::open(backing_path.c_str(), O_RDWR | O_CLOEXEC);
  const int e = errno;  // before doctest's own calls can change it
  // A writer killed before it created the file left none: nothing to change (the caller's
  // check then finds a fresh mark, which is right only if nothing was handed out).
  if (fd < 0 && e == ENOENT) return;
  REQUIRE_MESSAGE(fd >= 0, "open " << backing_path << ": " << std::string(std::strerror(e)));
  char id[36];
  // A file created and never synced comes back empty: no boot id in it either.
  if (::pread(fd, id, sizeof id, 16) == static_cast<ssize_t>(sizeof id)) {
    id[0] = id[0] == 'x' ? 'y' : 'x';
    CHECK(::pwrite(fd, id, sizeof id, 16) == static_cast<ssize_t>(sizeof id));
  }
  ::close(fd);
}

/// 0 when lazyfs can run here; else 77 after saying why (the test is then reported skipped).
inline int unavailable() {
  if (std::strlen(RILL_LAZYFS) == 0) {
    std::printf("SKIPPED: lazyfs was not built (libfuse3 not found: apt-get install libfuse3-dev fuse3)\n");
    return 77;
  }
  if (const int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC); fd >= 0) {
    ::close(fd);
  } else {
    std::printf("SKIPPED: cannot open /dev/fuse (%s): no FUSE here\n", std::strerror(errno));
    return 77;
  }
  if (run({"fusermount3", "-V"}) != 0) {
    std::printf("SKIPPED: fusermount3 not found (apt-get install fuse3)\n");
    return 77;
  }
  return 0;
}

}  // namespace lazyfs
