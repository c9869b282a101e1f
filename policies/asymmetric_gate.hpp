// Mutual exclusion between one thread that enters very often (a publishing thread, per
// message) and others that enter rarely (a helper thread, the log writer once a batch).
// The frequent side pays no locked instruction: it stores a flag and reads the other side's
// (a compiler barrier between them). The rare side makes that safe with membarrier(2): its
// barrier runs on every CPU executing a thread of this process, so either the frequent side
// sees the gate closed or the rare side sees the frequent side inside. A locked instruction
// per message costs a publishing thread ~10 ns here, because it waits for every store still
// buffered (the record just copied); the barrier costs the rare side a few microseconds.
//
// Without membarrier (old kernels, seccomp) both sides fall back to sequentially consistent
// accesses: correct, with a locked instruction again.
#pragma once

#include <atomic>
#include <mutex>

namespace rill::detail {

/// A hint to the core that this thread is spinning (lets a hyperthread sibling run).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

class AsymmetricGate {
 public:
  AsymmetricGate();
  AsymmetricGate(const AsymmetricGate&) = delete;
  AsymmetricGate& operator=(const AsymmetricGate&) = delete;

  // The frequent side: one thread at a time (its callers exclude each other).
  /// Enters unless the gate is closed; no locked instruction when membarrier works.
  [[nodiscard]] bool try_enter() noexcept {
    if (m_asymmetric) {
      m_inside.store(true, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      if (!m_closed.load(std::memory_order_acquire)) return true;
    } else {
      m_inside.store(true, std::memory_order_seq_cst);
      if (!m_closed.load(std::memory_order_seq_cst)) return true;
    }
    m_inside.store(false, std::memory_order_release);
    return false;
  }
  /// Enters, waiting while the gate is closed.
  void enter() noexcept;
  void leave() noexcept { m_inside.store(false, std::memory_order_release); }

  // The rare side: one at a time (its callers exclude each other, e.g. with a mutex).
  /// Closes the gate and waits until the frequent side is out.
  void close() noexcept;
  /// Closes the gate unless the frequent side is inside (then it stays open).
  [[nodiscard]] bool try_close() noexcept;
  void open() noexcept { m_closed.store(false, std::memory_order_release); }

 private:
  void close_and_fence() noexcept;

  const bool m_asymmetric;
  alignas(64) std::atomic<bool> m_inside{false};  ///< written by the frequent side
  alignas(64) std::atomic<bool> m_closed{false};  ///< written by the rare side
};

/// A mutex whose holder also excludes one fast appender that takes no lock: lock() and
/// unlock() close and open an AsymmetricGate around the mutex when gating is on. Waits on a
/// std::condition_variable_any open the gate while they sleep, as they release the mutex.
class GatedMutex {
 public:
  /// Before any concurrent use.
  void set_gated(bool on) noexcept { m_gated = on; }
  [[nodiscard]] bool gated() const noexcept { return m_gated; }

  /// The fast appender: exclusive access to what the mutex guards, without taking it.
  [[nodiscard]] bool try_fast() noexcept { return m_gated && m_gate.try_enter(); }
  void unlock_fast() noexcept { m_gate.leave(); }

  void lock() {
    m_mu.lock();
    if (m_gated) m_gate.close();
  }
  bool try_lock() {
    if (!m_mu.try_lock()) return false;
    if (m_gated) m_gate.close();
    return true;
  }
  void unlock() {
    if (m_gated) m_gate.open();
    m_mu.unlock();
  }

 private:
  std::mutex m_mu;
  AsymmetricGate m_gate;
  bool m_gated = false;
};

}  // namespace rill::detail
