// main of the log test binaries: a case that cannot run here (log_direct_test without
// O_DIRECT) makes the binary exit 77, reported by ctest as skipped (tests/skip.hpp).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "../skip.hpp"

RILL_DOCTEST_MAIN_WITH_SKIPS
