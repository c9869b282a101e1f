#include "idle_service.hpp"

#include <pthread.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace rill::detail {

IdleService::IdleService(std::function<void()> work, std::chrono::milliseconds period)
    : m_work(std::move(work)), m_period(period) {
  m_thread = std::thread([this] {
    pthread_setname_np(pthread_self(), "rill-idle");
    run();
  });
}

IdleService::~IdleService() {
  {
    std::lock_guard g(m_mutex);
    m_stop = true;
  }
  m_cv.notify_all();
  m_thread.join();
}

void IdleService::enter() noexcept {
  // Only the publishing thread writes the count: a plain increment, no locked add.
  m_entries.store(m_entries.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  for (unsigned spins = 0; m_held.exchange(true, std::memory_order_acquire); ++spins) {
    // The helper is inside one service() call (short): wait it out.
    if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
      _mm_pause();
#endif
    } else {
      std::this_thread::yield();
    }
  }
}

void IdleService::run() {
  std::uint64_t seen = m_entries.load(std::memory_order_relaxed);
  std::unique_lock lk(m_mutex);
  while (!m_cv.wait_for(lk, m_period, [this] { return m_stop; })) {
    const std::uint64_t now = m_entries.load(std::memory_order_relaxed);
    if (now != seen) {  // the application is using the publisher: it services it itself
      seen = now;
      continue;
    }
    if (m_held.exchange(true, std::memory_order_acquire)) continue;  // entered just now
    lk.unlock();
    m_work();
    m_runs.fetch_add(1, std::memory_order_relaxed);
    m_held.store(false, std::memory_order_release);
    lk.lock();
  }
}

}  // namespace rill::detail
