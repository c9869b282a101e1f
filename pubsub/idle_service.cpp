#include "idle_service.hpp"

#include <pthread.h>

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
  m_gate.enter();  // waits only while the helper is inside one service() call
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
    if (!m_gate.try_close()) continue;  // entered just now
    lk.unlock();
    m_work();
    m_runs.fetch_add(1, std::memory_order_relaxed);
    m_gate.open();
    lk.lock();
  }
}

}  // namespace rill::detail
