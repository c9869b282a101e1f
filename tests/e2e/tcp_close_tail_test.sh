#!/usr/bin/env bash
# A tcp publisher that closes right after a burst must not lose the burst's tail (nor its
# BYE) on a loaded host: every run, the subscriber gets 1..COUNT with no gap. The cores are
# kept busy by CPU-bound loops (what exposed the loss before publishers waited for the
# answers to their BYE). Label perf: about a minute, and it loads the machine.
#   tcp_close_tail_test.sh RILL [RUNS]
set -euo pipefail
rill=$1
runs=${2:-40}
count=2000
hogs=()
cleanup() { for h in "${hogs[@]}"; do kill "$h" 2>/dev/null || true; done; }
trap cleanup EXIT
for _ in 1 2 3 4; do (while :; do :; done) & hogs+=($!); done
port() { echo $((20000 + RANDOM % 30000)); }  # a clash shows as a failed run, named
for i in $(seq 1 "$runs"); do
  ep="tcp://127.0.0.1:$(port)"
  "$rill" pub "$ep" md/x --count "$count" --size 100 --wait-subs 1 2>/dev/null &
  pub=$!
  line=$(timeout 30 "$rill" sub "$ep" md/ --count "$count" --idle-exit-ms 4000 --policy drop-oldest:65536 \
           --format hex 2>/dev/null | tail -1)
  wait "$pub"
  if [[ $line != *"\"received\":$count,\"gaps\":0,"* ]]; then
    echo "run $i of $runs: $line" >&2
    exit 1
  fi
done
echo "$runs runs: every subscriber got all $count messages"
