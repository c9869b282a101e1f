#include "asymmetric_gate.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

namespace rill::detail {

namespace {

int membarrier(int cmd) noexcept {
  return static_cast<int>(::syscall(__NR_membarrier, cmd, 0u, 0));
}

// Registered once per process; false when the kernel lacks it or a filter refuses it.
bool membarrier_ready() noexcept {
  static const bool ready = [] {
    const int cmds = membarrier(MEMBARRIER_CMD_QUERY);
    if (cmds < 0 || (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
    return membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
  }();
  return ready;
}

template <class Done>
void spin_until(Done done) noexcept {
  for (unsigned spins = 0; !done(); ++spins) {
    if (spins < 128) {
      cpu_relax();
    } else {
      std::this_thread::yield();  // the other side was preempted inside: let it run
    }
  }
}

}  // namespace

AsymmetricGate::AsymmetricGate() : m_asymmetric(membarrier_ready()) {}

void AsymmetricGate::enter() noexcept {
  while (!try_enter()) spin_until([this] { return !m_closed.load(std::memory_order_acquire); });
}

void AsymmetricGate::close_and_fence() noexcept {
  if (m_asymmetric) {
    m_closed.store(true, std::memory_order_relaxed);
    // A full barrier on every CPU running one of our threads: the frequent side's store of
    // m_inside is visible below, or its coming load of m_closed sees true. (Registered at
    // construction, so the command cannot fail here.)
    (void)membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
    return;
  }
  m_closed.store(true, std::memory_order_seq_cst);  // no membarrier: both sides use full barriers
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

void AsymmetricGate::close() noexcept {
  close_and_fence();
  spin_until([this] { return !m_inside.load(std::memory_order_acquire); });
}

bool AsymmetricGate::try_close() noexcept {
  close_and_fence();
  if (!m_inside.load(std::memory_order_acquire)) return true;
  open();
  return false;
}

}  // namespace rill::detail
