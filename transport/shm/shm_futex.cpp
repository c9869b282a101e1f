#include "shm_futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

namespace rill::detail::shm {

namespace {

timespec to_timespec(std::chrono::nanoseconds d) {
  const auto ns = std::max<std::int64_t>(0, d.count());
  return {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

// Mirrors struct futex_waitv of <linux/futex.h>, absent from older headers.
struct WaitV {
  std::uint64_t val;
  std::uint64_t uaddr;
  std::uint32_t flags;
  std::uint32_t reserved;
};

std::atomic<bool> waitv_missing{false};

}  // namespace

void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, std::chrono::nanoseconds timeout) noexcept {
  const timespec ts = to_timespec(timeout);
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void futex_wake(std::atomic<std::uint32_t>& word, int n) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, n, nullptr, nullptr, 0);
}

void futex_wait_any(std::span<const WaitWord> words, std::chrono::nanoseconds timeout) noexcept {
  if (words.empty()) return;
  if (words.size() == 1) return futex_wait(*words[0].word, words[0].expected, timeout);
  if (!waitv_missing.load(std::memory_order_relaxed) && words.size() <= 128) {
    WaitV v[128];
    for (std::size_t i = 0; i < words.size(); ++i) {
      v[i] = {words[i].expected, reinterpret_cast<std::uint64_t>(words[i].word), 2 /* FUTEX2_SIZE_U32 */, 0};
    }
    // futex_waitv takes an absolute CLOCK_MONOTONIC deadline.
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const auto deadline = std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec) + timeout;
    const timespec ts = to_timespec(deadline);
    if (::syscall(SYS_futex_waitv, v, words.size(), 0, &ts, CLOCK_MONOTONIC) >= 0 || errno != ENOSYS) return;
    waitv_missing.store(true, std::memory_order_relaxed);
  }
  futex_wait(*words[0].word, words[0].expected,
             std::min<std::chrono::nanoseconds>(timeout, std::chrono::milliseconds(1)));
}

}  // namespace rill::detail::shm
