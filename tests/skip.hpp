// Skips that ctest reports as skipped, not passed. A doctest case that cannot run here calls
// skip(why) and returns; the binary's main (RILL_DOCTEST_MAIN_WITH_SKIPS) then exits 77,
// which the ctest entry maps to "skipped" (SKIP_RETURN_CODE 77). Only when every case that
// ran passed: a failure is still a failure. Give a case that may skip a ctest entry of its
// own (a -tc filter), so its skip does not hide that the other cases ran.
#pragma once

#include <doctest/doctest.h>

#include <cstdio>
#include <string>

namespace rilltest {

inline bool& skipped() {
  static bool s = false;
  return s;
}

inline void skip(const std::string& why) {
  std::printf("SKIPPED: %s\n", why.c_str());
  std::fflush(stdout);
  skipped() = true;
}

inline int doctest_main_with_skips(int argc, char** argv) {
  doctest::Context ctx(argc, argv);
  const int rc = ctx.run();
  if (ctx.shouldExit() || rc != 0) return rc;
  return skipped() ? 77 : 0;
}

}  // namespace rilltest

#define RILL_DOCTEST_MAIN_WITH_SKIPS \
  int main(int argc, char** argv) { return rilltest::doctest_main_with_skips(argc, argv); }
