// The seed of a randomised test: RILL_TEST_SEED from the environment replays a run, else a
// fresh one is drawn. Printed once per process on stderr (ctest --output-on-failure shows
// it with the failure), so any failing run can be replayed exactly.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

namespace rilltest {

inline std::uint64_t test_seed() {
  static const std::uint64_t seed = [] {
    std::uint64_t s = 0;
    const char* env = std::getenv("RILL_TEST_SEED");
    if (env != nullptr && *env != '\0') {
      s = std::stoull(env);
    } else {
      std::random_device rd;
      s = (static_cast<std::uint64_t>(rd()) << 32) | rd();
    }
    std::fprintf(stderr, "seed: %llu (replay with RILL_TEST_SEED=%llu)\n", static_cast<unsigned long long>(s),
                 static_cast<unsigned long long>(s));
    return s;
  }();
  return seed;
}

}  // namespace rilltest
