// A durable publisher's helper thread. Late joiners and durable subscriptions catching up
// are served, and their acks stored, from inside publish() and service(); a publisher
// whose application stopped publishing would leave them waiting. When the publishing
// thread has not entered the publisher for a period, this thread calls the transport's
// service() for it. The two exclude each other with an AsymmetricGate: the publishing
// thread enters it per call without a locked instruction; the helper only ever tries.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "policies/asymmetric_gate.hpp"

namespace rill::detail {

class IdleService {
 public:
  IdleService(std::function<void()> work, std::chrono::milliseconds period);
  IdleService(const IdleService&) = delete;
  IdleService& operator=(const IdleService&) = delete;
  ~IdleService();  ///< stops the thread (waits for a service() under way)

  void enter() noexcept;  ///< the publishing thread, before it touches the transport
  void leave() noexcept { m_gate.leave(); }
  /// Times the helper did the work (for tests and stats).
  [[nodiscard]] std::uint64_t runs() const noexcept { return m_runs.load(std::memory_order_relaxed); }

 private:
  void run();

  std::function<void()> m_work;
  std::chrono::milliseconds m_period;
  AsymmetricGate m_gate;
  alignas(64) std::atomic<std::uint64_t> m_entries{0};  ///< written by the publishing thread only
  std::atomic<std::uint64_t> m_runs{0};
  std::mutex m_mutex;
  std::condition_variable m_cv;
  bool m_stop = false;
  std::thread m_thread;
};

/// Holds the publisher for the calling thread for one call (no-op without a helper).
class IdleServiceEntry {
 public:
  explicit IdleServiceEntry(IdleService* s) noexcept : m_service(s) {
    if (m_service != nullptr) m_service->enter();
  }
  IdleServiceEntry(const IdleServiceEntry&) = delete;
  IdleServiceEntry& operator=(const IdleServiceEntry&) = delete;
  ~IdleServiceEntry() {
    if (m_service != nullptr) m_service->leave();
  }

 private:
  IdleService* m_service;
};

}  // namespace rill::detail
