// Futex waits and wakes on words in a shared mapping (not FUTEX_PRIVATE: the
// sleeper and the waker are different processes).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>

namespace rill::detail::shm {

/// Sleeps while `*word == expected`, at most `timeout`; spurious wake-ups happen.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, std::chrono::nanoseconds timeout) noexcept;
/// Wakes up to `n` sleepers on `word`.
void futex_wake(std::atomic<std::uint32_t>& word, int n) noexcept;

/// One word of several to wait on at once.
struct WaitWord {
  std::atomic<std::uint32_t>* word;
  std::uint32_t expected;
};
/// Sleeps until any of `words` changes (futex_waitv, Linux 5.16+), at most `timeout`.
/// Falls back to waiting on the first word with a short timeout on older kernels.
void futex_wait_any(std::span<const WaitWord> words, std::chrono::nanoseconds timeout) noexcept;

}  // namespace rill::detail::shm
