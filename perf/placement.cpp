// Process placement for the two sides of a measurement. Cross-core is the default
// because it is how two services on one host usually run, and it keeps a spinning
// receiver from stealing the sender's core.
#include "perf_kit.hpp"

#include <sched.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace rill::perf {

std::string pin_side(Placement placement, int side) {
  if (placement == Placement::none) return "none";

  // Pick from the CPUs this process may use rather than literally 0 and 1, so a run
  // under taskset or in a cpuset container still pins somewhere legal.
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
    return std::string("none (sched_getaffinity failed: ") + std::strerror(errno) + ")";
  int first = -1;
  int second = -1;
  for (int cpu = 0; cpu < CPU_SETSIZE && second < 0; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    (first < 0 ? first : second) = cpu;
  }
  if (first < 0) return "none (no CPU in affinity mask)";

  std::string used = placement == Placement::cross ? "cross" : "same";
  int cpu = first;
  if (placement == Placement::cross) {
    if (second >= 0)
      cpu = side == 0 ? first : second;
    else
      used = "same (cross needs 2 CPUs, 1 available)";
  }

  cpu_set_t mask;
  CPU_ZERO(&mask);
  CPU_SET(cpu, &mask);
  // pid 0 = the calling thread; threads it creates afterwards (ZeroMQ I/O threads)
  // inherit the mask, which is why the runner pins before the sides build contexts.
  if (sched_setaffinity(0, sizeof mask, &mask) != 0)
    return std::string("none (sched_setaffinity failed: ") + std::strerror(errno) + ")";
  return used;
}

}  // namespace rill::perf
