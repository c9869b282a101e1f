#!/usr/bin/env bash
# The main demo: sets up, builds (Release), then runs one publisher and two subscribers
# as separate processes over tcp: a fast one with backpressure and a slow one
# (--work-us) with drop-oldest. Prints what each received, the gaps the slow one
# counted; then the same over shared memory and over udp multicast (reliable, one
# subscriber losing 5% of its datagrams and recovering them), webhooks in and out
# (examples/webhook_in_out.sh), durability (a durable subscriber killed and resumed from
# its last ack against a persistent publisher; a consumer group losing a member), and short latency summaries from `rill perf shm|tcp`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
rill=build/release/apps/cli/rill
out=build/demo
mkdir -p "$out"
port=$((20000 + RANDOM % 20000))
ep="tcp://127.0.0.1:$port"
count=50000

echo
echo "== demo: 1 publisher -> 2 subscribers on $ep, $count messages"
"$rill" sub "$ep" demo/ --policy backpressure:64 --format text --idle-exit-ms 2000 >"$out/fast.txt" &
fast=$!
"$rill" sub "$ep" demo/ --policy drop-oldest:100 --work-us 100 --format text --idle-exit-ms 2000 >"$out/slow.txt" &
slow=$!
"$rill" pub "$ep" demo/ticks --count "$count" --size 64 --wait-subs 2 2>"$out/pub.txt"
wait "$fast" "$slow"

stats() { tail -n 1 "$1"; }
field() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" <<<"$1"; }
pub_stats=$(tail -n 1 "$out/pub.txt")
fast_stats=$(stats "$out/fast.txt")
slow_stats=$(stats "$out/slow.txt")
echo "publisher:          $pub_stats"
echo "fast (backpressure:64):        received $(field "$fast_stats" received), gaps $(field "$fast_stats" gaps)"
echo "slow (drop-oldest:100, 100us): received $(field "$slow_stats" received), gaps $(field "$slow_stats" gaps), dropped by its policy $(field "$slow_stats" dropped)"
echo "  received + gaps = $(($(field "$slow_stats" received) + $(field "$slow_stats" gaps))) (sent $count)"
echo "  first and last messages the slow one handled:"
head -n 2 "$out/slow.txt" | sed 's/^/    /'
tail -n 3 "$out/slow.txt" | head -n 2 | sed 's/^/    /'

echo
shm="shm://rill-demo-$$"
echo "== demo: the same over shared memory ($shm): zero-copy, futex wake-up, no daemon"
"$rill" sub "$shm" demo/ --policy backpressure:64 --idle block --format text --idle-exit-ms 2000 >"$out/shm-fast.txt" &
fast=$!
"$rill" sub "$shm" demo/ --policy drop-oldest:100 --work-us 100 --format text --idle-exit-ms 2000 >"$out/shm-slow.txt" &
slow=$!
"$rill" pub "$shm" demo/ticks --count "$count" --size 64 --wait-subs 2 2>"$out/shm-pub.txt"
wait "$fast" "$slow"
fast_stats=$(stats "$out/shm-fast.txt")
slow_stats=$(stats "$out/shm-slow.txt")
echo "publisher:          $(tail -n 1 "$out/shm-pub.txt")"
echo "fast (backpressure:64, futex):  received $(field "$fast_stats" received), gaps $(field "$fast_stats" gaps)"
echo "slow (drop-oldest:100, 100us):  received $(field "$slow_stats" received), gaps $(field "$slow_stats" gaps), dropped by its policy $(field "$slow_stats" dropped)"
echo "  received + gaps = $(($(field "$slow_stats" received) + $(field "$slow_stats" gaps))) (sent $count)"

echo
echo "== rill perf shm --size 64 (rill beside a bare cache-line ping-pong, same run, pinned cross-core)"
"$rill" perf shm --size 64 --count 20000 --throughput-count 1000000 --repeat 3 \
  --json "$out/perf-shm.json" --plot "$out/perf-shm.svg" 2>/dev/null

echo
group="239.255.$((RANDOM % 250)).$((1 + RANDOM % 250))"
uport=$((20000 + RANDOM % 20000))
echo "== demo: udp multicast on loopback ($group:$uport), $count messages, reliable=1"
echo "   one subscriber plain, one with 5% of arriving datagrams dropped (the transport's test hook)"
uep="udp://$group:$uport?iface=127.0.0.1&reliable=1"
"$rill" sub "$uep" demo/ --policy drop-oldest:65536 --format text --idle-exit-ms 2000 >"$out/udp-a.txt" &
ua=$!
"$rill" sub "$uep&fault_data=0.05,0,0" demo/ --policy drop-oldest:65536 --format text --idle-exit-ms 2000 >"$out/udp-b.txt" &
ub=$!
"$rill" pub "$uep" demo/ticks --count "$count" --size 64 --wait-subs 2 2>"$out/udp-pub.txt"
wait "$ua" "$ub"
echo "publisher:                 $(tail -n 1 "$out/udp-pub.txt")"
for s in a b; do
  st=$(stats "$out/udp-$s.txt")
  in_order=$(awk '$1 == "demo/ticks" { if ($2 != ++n) bad++ } END { print (bad ? "NOT in order" : "all in order, none twice") }' "$out/udp-$s.txt")
  echo "subscriber $s (reliable=1): received $(field "$st" received), gaps $(field "$st" gaps); $in_order"
done
echo "   (the lossy one NAKed what it lost and got it retransmitted; with reliable=0 the same loss"
echo "    shows up as gaps instead, counted exactly: received + gaps == sent)"

echo
echo "== demo: webhooks in and out (examples/webhook_in_out.sh: signed curl -> rill serve -> rill sub delivering"
echo "   to a second rill serve, which verifies the signature -> rill sub)"
examples/webhook_in_out.sh "$rill"

echo
dport=$((20000 + RANDOM % 20000))
dep="tcp://127.0.0.1:$dport"
ddir="$out/durable"
rm -rf "$ddir" && mkdir -p "$ddir"
dcount=20000
echo "== demo: durability on $dep: a persistent publisher (log in $ddir/log, fsync every:10) and a durable"
echo "   subscriber killed with SIGKILL part way, then restarted under the same durable name"
"$rill" pub "$dep" orders/eu --durability "persistent:$ddir/log" --count "$dcount" --rate 10000 --linger-ms 3000 \
  2>"$out/durable-pub.txt" &
dpub=$!
# One write(2) per handled message, appended: what the handler did survives the kill.
"$rill" sub "$dep" orders/ --durable billing --state-dir "$ddir" --format text >>"$ddir/handled.txt" &
dsub=$!
handled() { awk '$1 == "orders/eu"' "$ddir/handled.txt" | wc -l; }
for _ in $(seq 200); do [ "$(handled)" -ge 5000 ] && break; sleep 0.05; done
kill -9 "$dsub" && wait "$dsub" 2>/dev/null || true
echo "subscriber killed (SIGKILL) after handling $(handled) messages; restarting it (--from last-ack)"
"$rill" sub "$dep" orders/ --durable billing --state-dir "$ddir" --format text --idle-exit-ms 1500 >>"$ddir/handled.txt"
wait "$dpub"
echo "publisher:  $(tail -n 1 "$out/durable-pub.txt")"
awk -v n="$dcount" '$1 == "orders/eu" { if ($2 != ++k) bad++ }
  END { printf "handled %d messages in all: %s\n", k, (bad || k != n) ? "NOT 1.." n " exactly once" : "1.." n ", each exactly once, in order" }' \
  "$ddir/handled.txt"
echo "the log:    $("$rill" log list "$ddir/log" | head -n 1)"
echo "its acks:   $("$rill" log list "$ddir/log" | grep '"ack"' || echo none)"

echo
gport=$((20000 + RANDOM % 20000))
[ "$gport" = "$dport" ] && gport=$((gport + 1))
# The same durable group over tcp, then over shared memory.
group_demo() {
  gep=$1
  gdir="$out/group-$2"
  rm -rf "$gdir" && mkdir -p "$gdir/state"
  gcount=30000
  echo "== demo: a durable consumer group on $gep: 3 'rill sub --group workers' sharing $gdir/state split"
  echo "   $gcount messages; one member is killed with SIGKILL midway and the others take over its share"
  "$rill" pub "$gep" jobs/resize --durability "persistent:$gdir/log" --count "$gcount" --rate 20000 --wait-subs 3 \
    --linger-ms 3000 2>"$out/group-$2-pub.txt" &
  gpub=$!
  gpids=()
  for i in 1 2 3; do
    "$rill" sub "$gep" jobs/ --group workers --durability persistent --durable "w$i" --state-dir "$gdir/state" \
      --format text --idle-exit-ms 2500 >>"$gdir/w$i.txt" 2>"$gdir/w$i.err" &
    gpids+=($!)
  done
  share() { awk '$1 == "jobs/resize"' "$gdir/w$1.txt" | wc -l; }
  for _ in $(seq 300); do [ "$(share 2)" -ge 3000 ] && break; sleep 0.05; done
  kill -9 "${gpids[1]}" && wait "${gpids[1]}" 2>/dev/null || true
  echo "member w2 killed (SIGKILL) after handling $(share 2) messages"
  wait "${gpids[0]}" "${gpids[2]}" "$gpub" || true
  echo "members handled: w1 $(share 1), w2 $(share 2) (killed), w3 $(share 3)"
  awk -v n="$gcount" '$1 == "jobs/resize" { c[$2]++ }
    END { for (s in c) { k++; if (c[s] > 1) twice++ } ;
          printf "distinct messages handled: %d of %d; handled by two members: %d\n", k, n, twice + 0 }' \
    "$gdir"/w1.txt "$gdir"/w2.txt "$gdir"/w3.txt
}
group_demo "tcp://127.0.0.1:$gport" tcp
echo
group_demo "shm://rill-demo-group-$$" shm

echo
echo "== rill perf tcp --size 64 (rill beside raw ZeroMQ, same run, pinned cross-core; throughput with --batch 256)"
"$rill" perf tcp --size 64 --count 6000 --throughput-count 500000 --batch 256 --repeat 3 \
  --json "$out/perf.json" --plot "$out/perf.svg" 2>/dev/null
echo "(JSON: $out/perf.json, plot: $out/perf.svg)"
