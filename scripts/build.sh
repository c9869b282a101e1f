#!/usr/bin/env bash
# Configures and builds one variant into build/VARIANT: release (default), asan (ASan+UBSan),
# tsan. Further arguments name targets to build (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
variant=${1:-release}
case "$variant" in
  release) flags=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DRILL_SANITIZE=address,undefined") ;;
  tsan) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRILL_SANITIZE=thread) ;;
  *) echo "build.sh: variant must be release, asan or tsan" >&2; exit 2 ;;
esac
# ccache (installed by setup.sh) keeps CI's three builds and a developer's rebuilds short.
# Paths are hashed relative to the checkout, so a fresh clone elsewhere reuses the cache.
if command -v ccache >/dev/null; then
  flags+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
fi
cmake -S . -B "build/$variant" -G Ninja "${flags[@]}" >/dev/null
targets=()
for t in "${@:2}"; do targets+=(--target "$t"); done
cmake --build "build/$variant" -j "$(nproc)" "${targets[@]}"
