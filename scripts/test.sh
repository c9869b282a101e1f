#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite: a Release build + ctest, an
# ASan+UBSan build + ctest, and a TSan build running the concurrency tests.
# Long perf/soak tests carry the ctest label "perf" and are skipped here.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc)

echo "== release build + ctest"
scripts/build.sh release
ctest --test-dir build/release --output-on-failure -j "$jobs" -LE perf

echo "== ASan + UBSan build + ctest"
scripts/build.sh asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan --output-on-failure -j "$jobs" -LE 'perf|install'

echo "== TSan build + concurrency tests"
scripts/build.sh tsan inbound_queue_test asymmetric_gate_test pubsub_test history_test shm_threads_test log_test udp_fault_test \
  shm_durable_test shm_history_test shm_group_test udp_group_test
TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp" \
  ctest --test-dir build/tsan --output-on-failure -j "$jobs" -L tsan
