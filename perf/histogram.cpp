// Percentiles from every sample (no bucketing): a run keeps at most a few million
// samples, so sorting a copy is cheap and avoids histogram rounding at the tail.
#include "perf_kit.hpp"

#include <algorithm>

namespace rill::perf {
namespace {

// Nearest-rank percentile with p given in parts per 100000, in integer arithmetic so
// p99.9 of 20000 samples is rank 19980 exactly (floating point would round it up).
std::uint64_t nearest_rank(const std::vector<std::uint64_t>& sorted, std::uint64_t p_per_100k) {
  const std::uint64_t n = sorted.size();
  std::uint64_t rank = (p_per_100k * n + 99999) / 100000;  // ceil(p * n), 1-based
  rank = std::clamp<std::uint64_t>(rank, 1, n);
  return sorted[rank - 1];
}

double to_us(std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

}  // namespace

Percentiles percentiles_us(std::vector<std::uint64_t> samples_ns) {
  if (samples_ns.empty()) return {};
  std::sort(samples_ns.begin(), samples_ns.end());
  return {
      .p50 = to_us(nearest_rank(samples_ns, 50000)),
      .p90 = to_us(nearest_rank(samples_ns, 90000)),
      .p99 = to_us(nearest_rank(samples_ns, 99000)),
      .p999 = to_us(nearest_rank(samples_ns, 99900)),
      .max = to_us(samples_ns.back()),
      .n = samples_ns.size(),
  };
}

}  // namespace rill::perf
