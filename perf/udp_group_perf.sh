#!/usr/bin/env bash
# Consumer groups over reliable udp against plain fan-out, in the same run: `rill pub` of
# N 64-byte messages to 3 `rill sub` processes, once as fan-out subscribers (each gets
# every message, one multicast send per message) and once as the members of one group
# (each gets a third, by unicast on its own stream). The figure is the publisher's wall
# time from its first publish to a close that every subscriber confirmed (all received),
# as messages/s; the ratio is group / fan-out. Subscribers use backpressure:4096 (nothing
# dropped) and write to /dev/null.
#   perf/udp_group_perf.sh [RILL_BINARY] [MESSAGES] [RUNS]
set -euo pipefail
rill=${1:-build/release/apps/cli/rill}
n=${2:-500000}
runs=${3:-3}
[[ -x "$rill" ]] || { echo "udp_group_perf: no rill binary at $rill (scripts/build.sh release rill_cli)" >&2; exit 2; }

run() {  # run MODE PORT -> prints messages/s
  local mode=$1 port=$2 ep="udp://239.255.77.1:$2?iface=127.0.0.1&reliable=1" pids=() extra=()
  [[ $mode == group ]] && extra=(--group perf)
  for _ in 1 2 3; do
    "$rill" sub "$ep" perf/ --policy backpressure:4096 --idle-exit-ms 3000 "${extra[@]}" >/dev/null 2>&1 &
    pids+=($!)
  done
  # --wait-subs holds the first publish until all three joined; the time counts from it.
  local t0 t1
  "$rill" pub "$ep" perf/t --count 1 --wait-subs 3 --wait-ms 10000 --size 64 >/dev/null 2>&1
  t0=$(date +%s.%N)
  "$rill" pub "$ep" perf/t --count "$n" --wait-subs 3 --wait-ms 10000 --size 64 >/dev/null 2>&1
  t1=$(date +%s.%N)
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  echo "$n / ($t1 - $t0)" | bc -l
}

port=$((40000 + $$ % 2000))
printf '%-4s %14s %14s %8s\n' run fanout_msg_s group_msg_s ratio
for i in $(seq 1 "$runs"); do
  f=$(run fanout $((port + 2 * i)))
  g=$(run group $((port + 2 * i + 1)))
  printf '%-4s %14.0f %14.0f %8.2f\n' "$i" "$f" "$g" "$(echo "$g / $f" | bc -l)"
done
