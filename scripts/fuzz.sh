#!/usr/bin/env bash
# Builds the libFuzzer targets in tests/fuzz with clang-19 + ASan/UBSan and runs each
# one for SECONDS (default 60) over a copy of its kept corpus.
#
#   scripts/fuzz.sh [--merge] [SECONDS]
#
# --merge   afterwards replace tests/fuzz/corpus/<target> with the minimised union of
#           the kept corpus and everything found (libFuzzer -merge=1); commit the result.
#
# Exits non-zero when any target crashes; the reproducer is printed and kept in the
# work dir ($RILL_FUZZ_WORK, default a fresh /tmp/fuzz-rill.XXXXXX).
#
# clang-19 is needed because Debian's default clang 14 cannot read GCC 12's <expected>.
# The library sources a target covers are compiled here with the same sanitizers,
# so libFuzzer sees their coverage; the normal build only replays the corpus (ctest).
set -euo pipefail

merge=0
seconds=60
for arg in "$@"; do
  case "$arg" in
    --merge) merge=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *[!0-9]*|'') echo "fuzz.sh: SECONDS must be a whole number, got '$arg'" >&2; exit 2 ;;
    *) seconds=$arg ;;
  esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fuzz_src=$repo/tests/fuzz

# --- toolchain -------------------------------------------------------------------
need=()
command -v clang++-19 >/dev/null || need+=(clang-19)
# The fuzzer runtime ships in libclang-rt-19-dev, separately from the compiler.
dpkg-query -W -f='${Status}' libclang-rt-19-dev 2>/dev/null | grep -q 'install ok installed' \
  || need+=(libclang-rt-19-dev)
command -v flatc >/dev/null || need+=(flatbuffers-compiler)
[[ -f /usr/include/flatbuffers/flatbuffers.h ]] || need+=(libflatbuffers-dev)
if ((${#need[@]})); then
  echo "fuzz.sh: installing ${need[*]}"
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${need[@]}"
fi

cxx=clang++-19
san=("-fsanitize=address,undefined" "-fno-sanitize-recover=undefined")
cxxflags=(-std=c++2b -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Wpedantic
          -I"$repo/base/include" -I"$repo/codec/include" -I"$repo/policies/include" -I"$repo/transport/include" -I"$repo/pubsub/include" -I"$repo/stream/include" -I"$repo" -I"$repo/tests/fuzz")
# stream/*.cpp include their internal headers as "stream/....hpp", found from the repository root

work=${RILL_FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/fuzz-rill.XXXXXX")}
mkdir -p "$work/generated/rill" "$work/obj"
echo "fuzz.sh: work dir $work"

flatc --cpp --scoped-enums -o "$work/generated/rill" "$repo/codec/envelope.fbs"
cxxflags+=(-I"$repo/stream/sql/include")  # the SQL parser's public header
cxxflags+=(-I"$work/generated" $(pkg-config --cflags spdlog))  # base/logging.cpp: the group ledger's warnings

# build_target NAME LIBRARY_SOURCES...: the library objects are instrumented for
# coverage (fuzzer-no-link); only the target itself links libFuzzer's main.
build_target() {
  local name=$1; shift
  local objs=() src obj
  for src in "$@"; do
    obj=$work/obj/$(basename "${src%.cpp}").o
    "$cxx" "${cxxflags[@]}" "${san[@]}" -fsanitize=fuzzer-no-link -c "$repo/$src" -o "$obj"
    objs+=("$obj")
  done
  "$cxx" "${cxxflags[@]}" "${san[@]}" -fsanitize=fuzzer \
    "$fuzz_src/fuzz_$name.cpp" "${objs[@]}" -o "$work/fuzz_$name" -lcrypto -lsodium -lspdlog -lfmt -lsimdjson
}

echo "fuzz.sh: building with $($cxx --version | head -n1)"
build_target envelope codec/codec.cpp base/error.cpp
build_target control transport/tcp/tcp_wire.cpp
build_target batch transport/tcp/tcp_wire.cpp
build_target udp transport/udp/udp_wire.cpp transport/udp/udp_stream.cpp
build_target udp_auth transport/udp/udp_auth.cpp transport/udp/udp_wire.cpp base/error.cpp
build_target http_request connectors/http/request_reader.cpp
build_target signature_header connectors/http/signature.cpp base/error.cpp
build_target log_record policies/log/format.cpp policies/log/crc32c.cpp policies/log/dead_letter_format.cpp base/error.cpp
build_target shm_directory transport/shm/shm_directory_format.cpp base/error.cpp
build_target ack_store policies/log/ack_store.cpp policies/log/crc32c.cpp base/error.cpp
build_target state_file policies/durability/delivered_store.cpp policies/durability/mapped_file.cpp base/error.cpp
build_target sequence_mark policies/durability/sequence_mark.cpp policies/durability/mapped_file.cpp base/error.cpp
build_target sql stream/sql/sql_parse.cpp stream/sql/sql_ast.cpp
build_target group_ledger policies/durability/group_ledger.cpp policies/durability/mapped_file.cpp \
  base/logging.cpp base/error.cpp
build_target pgoutput connectors/cdc/pgoutput.cpp connectors/cdc/change_json.cpp base/error.cpp
build_target stream_json stream/json_fields.cpp codec/codec.cpp base/error.cpp
build_target stream_checkpoint stream/watermark.cpp stream/emitter.cpp stream/time_windows.cpp stream/session_windows.cpp \
  stream/sliding_windows.cpp stream/ordered_windows.cpp stream/window_operator.cpp stream/state_windows.cpp stream/checkpoint.cpp \
  stream/cumulate_windows.cpp base/error.cpp
build_target stream_join_checkpoint stream/watermark.cpp stream/join_operator.cpp stream/join_window.cpp \
  stream/join_keyed.cpp stream/join_checkpoint.cpp stream/state_file.cpp base/error.cpp
build_target cep_checkpoint stream/watermark.cpp stream/state_file.cpp stream/cep_pattern.cpp stream/cep_matcher.cpp \
  stream/cep_operator.cpp stream/cep_checkpoint.cpp base/error.cpp
build_target cep_sql stream/sql/sql_parse.cpp stream/sql/sql_ast.cpp stream/watermark.cpp stream/state_file.cpp \
  stream/cep_pattern.cpp stream/cep_matcher.cpp stream/cep_operator.cpp stream/cep_checkpoint.cpp stream/cep_sql.cpp \
  base/error.cpp
build_target sql_job stream/sql/sql_parse.cpp stream/sql/sql_ast.cpp stream/sql/value.cpp stream/sql/eval.cpp \
  stream/sql/expr_compile.cpp stream/sql/plan.cpp stream/sql/row_aggregate.cpp stream/sql/job.cpp stream/sql/job_state.cpp \
  stream/json_fields.cpp stream/watermark.cpp stream/emitter.cpp stream/time_windows.cpp stream/session_windows.cpp \
  stream/sliding_windows.cpp stream/ordered_windows.cpp stream/window_operator.cpp stream/state_windows.cpp \
  stream/checkpoint.cpp stream/cumulate_windows.cpp codec/codec.cpp base/error.cpp
build_target jetstream_input transport/jetstream/js_options.cpp transport/endpoint.cpp base/error.cpp

# --- run -------------------------------------------------------------------------
status=0
summary=()
for name in envelope control batch udp udp_auth http_request signature_header log_record shm_directory \
            ack_store state_file sequence_mark group_ledger pgoutput stream_json stream_checkpoint stream_join_checkpoint \
            cep_checkpoint jetstream_input sql sql_job cep_sql; do
  corpus=$work/corpus-$name
  rm -rf "$corpus"
  mkdir -p "$corpus"
  cp -r "$fuzz_src/corpus/$name/." "$corpus/"
  log=$work/fuzz-$name.log

  echo "fuzz.sh: fuzzing $name for ${seconds}s ($(find "$corpus" -type f | wc -l) seeds)"
  rc=0
  "$work/fuzz_$name" "$corpus" \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$work/$name-" >"$log" 2>&1 || rc=$?

  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  crashes=$(find "$work" -maxdepth 1 -type f \( -name "$name-crash-*" -o -name "$name-leak-*" \
            -o -name "$name-timeout-*" -o -name "$name-oom-*" \) | sort)
  if ((rc != 0)) || [[ -n $crashes ]]; then
    status=1
    echo "fuzz.sh: $name FAILED (exit $rc); log: $log" >&2
    grep -E -A40 '^==[0-9]+==ERROR|runtime error|fuzz property violated|deadly signal' "$log" | head -n 60 >&2 || true
    for f in $crashes; do
      echo "fuzz.sh: reproducer $f ($(stat -c %s "$f") bytes):" >&2
      od -A d -t x1 "$f" | head -n 20 >&2
      echo "fuzz.sh: replay with: $work/fuzz_$name $f" >&2
    done
    summary+=("$name: CRASH after ${execs:-?} executions")
    continue
  fi
  summary+=("$name: ${execs:-?} executions, no crash")

  if ((merge)); then
    # The kept corpus becomes the smallest set with the same coverage as seeds + finds.
    merged=$work/merged-$name
    rm -rf "$merged"
    mkdir -p "$merged"
    "$work/fuzz_$name" -merge=1 "$merged" "$fuzz_src/corpus/$name" "$corpus" \
      >"$work/merge-$name.log" 2>&1
    rm -rf "$fuzz_src/corpus/$name"
    cp -r "$merged" "$fuzz_src/corpus/$name"
    echo "fuzz.sh: $name corpus now $(find "$fuzz_src/corpus/$name" -type f | wc -l) files," \
      "$(du -sk "$fuzz_src/corpus/$name" | cut -f1) KiB"
  fi
done

echo "fuzz.sh: results (${seconds}s per target)"
for line in "${summary[@]}"; do echo "  $line"; done
exit "$status"
