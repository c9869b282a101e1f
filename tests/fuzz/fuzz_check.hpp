// A fuzz-target assertion that survives NDEBUG and names the broken property.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace rill::fuzz {

/// Aborts with `what` on stderr when `ok` is false; libFuzzer saves the input as a crash.
inline void expect(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz property violated: %s\n", what);
  std::abort();
}

}  // namespace rill::fuzz
