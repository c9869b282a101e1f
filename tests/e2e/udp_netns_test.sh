#!/usr/bin/env bash
# udp multicast across network namespaces with 5% receive-side loss (nftables).
#
# A publisher namespace and two subscriber namespaces, each joined by a veth pair to
# a bridge in a fourth "switch" namespace (so the host's own networking is never
# touched). In each subscriber namespace an nftables rule drops 5% of arriving UDP:
#   meta l4proto udp numgen random mod 100 < 5 drop
# reliable=1: 100000 messages arrive complete, in order, with no duplicate handed to
# the handler. reliable=0: received + gaps == sent, exactly, for each subscriber.
#
# Usage: udp_netns_test.sh PATH_TO_RILL [COUNT]
# Exits 77 (ctest SKIP_RETURN_CODE) with a reason when namespaces cannot be made here.
set -uo pipefail

rill=${1:?usage: udp_netns_test.sh PATH_TO_RILL [COUNT]}
count=${2:-100000}
skip() { echo "SKIP: $*"; exit 77; }

for tool in ip nft; do
  command -v "$tool" >/dev/null || skip "'$tool' not installed (apt-get install iproute2 nftables)"
done
[[ $(id -u) -eq 0 ]] || skip "creating network namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)"

tag="rn$$"  # unique per run; interface names stay under 15 characters
sw="${tag}sw"
names=(p a b)
work=$(mktemp -d)
cleanup() {
  for n in "${names[@]}"; do ip netns del "${tag}$n" 2>/dev/null; done
  ip netns del "$sw" 2>/dev/null
  for n in "${names[@]}"; do ip link del "${tag}${n}0" 2>/dev/null; done
  if [[ -n ${RILL_E2E_KEEP:-} ]]; then echo "kept output in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM

ip netns add "$sw" 2>"$work/err" || skip "cannot create a network namespace here: $(cat "$work/err")"
ip -n "$sw" link add br0 type bridge || skip "cannot create a bridge in a namespace"
ip -n "$sw" link set br0 type bridge mcast_snooping 0  # flood multicast to every port: no IGMP querier needed
ip -n "$sw" link set br0 up
i=1
for n in "${names[@]}"; do
  ns="${tag}$n"
  ip netns add "$ns" || skip "cannot create namespace $ns"
  ip link add "${tag}${n}0" type veth peer name "${tag}${n}1" || skip "cannot create veth pairs"
  ip link set "${tag}${n}0" netns "$ns"
  ip link set "${tag}${n}1" netns "$sw"
  ip -n "$sw" link set "${tag}${n}1" master br0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "10.77.0.$i/24" dev "${tag}${n}0"
  ip -n "$ns" link set "${tag}${n}0" up
  ip -n "$ns" route add 224.0.0.0/4 dev "${tag}${n}0"
  i=$((i + 1))
done
for n in a b; do
  ip netns exec "${tag}$n" nft -f - <<'NFT' || skip "nftables rule could not be loaded (kernel without nf_tables?)"
table inet rill_loss {
  chain input {
    type filter hook input priority 0; policy accept;
    meta l4proto udp numgen random mod 100 < 5 drop
  }
}
NFT
done

failures=0
check() {  # check DESCRIPTION CONDITION...
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; failures=$((failures + 1)); fi
}
stat_of() { grep -o "\"$2\":[0-9]*" "$1" | tail -1 | cut -d: -f2; }

run_mode() {  # run_mode RELIABLE PORT
  local reliable=$1 port=$2
  local group="239.77.0.$((reliable + 1))"
  echo "--- reliable=$reliable: $count messages to $group:$port, 5% loss at each subscriber"
  local subs=()
  i=2
  for n in a b; do
    ip netns exec "${tag}$n" "$rill" sub "udp://$group:$port?iface=10.77.0.$i&reliable=$reliable" t/ \
      --idle-exit-ms 4000 --format text --policy drop-oldest:65536 >"$work/$n$reliable.out" 2>"$work/$n$reliable.err" &
    subs+=($!)
    i=$((i + 1))
  done
  timeout 120 ip netns exec "${tag}p" "$rill" pub "udp://$group:$port?iface=10.77.0.1&reliable=$reliable&linger_ms=5000" \
    t/x --count "$count" --size 64 --wait-subs 2 --wait-ms 10000 --timeout-ms 20000 2>"$work/p$reliable.err"
  local pub_rc=$?
  check "publisher (reliable=$reliable) exited 0" test "$pub_rc" -eq 0
  for pid in "${subs[@]}"; do wait "$pid"; done
  local sent
  sent=$(stat_of "$work/p$reliable.err" sent)
  check "publisher sent $count" test "${sent:-0}" -eq "$count"
  for n in a b; do
    local out="$work/$n$reliable.out" received gaps dups
    received=$(stat_of "$out" received)
    gaps=$(stat_of "$out" gaps)
    echo "subscriber $n: received=$received gaps=$gaps"
    if [[ $reliable -eq 1 ]]; then
      check "$n: all $count received" test "${received:-0}" -eq "$count"
      check "$n: no gaps" test "${gaps:-1}" -eq 0
      # Sequence numbers in the text output: exactly 1..count, in order, each once.
      dups=$(awk '$1 == "t/x" { if ($2 != ++n) bad++ } END { print bad + 0 }' "$out")
      check "$n: handed over in order, none twice" test "$dups" -eq 0
    else
      check "$n: received + gaps == sent" test $((${received:-0} + ${gaps:-0})) -eq "$count"
      check "$n: the loss really happened (gaps > 0)" test "${gaps:-0}" -gt 0
    fi
  done
}

run_mode 1 17501
run_mode 0 17502
if ((failures > 0)); then
  echo "udp_netns: $failures check(s) failed"
  for f in "$work"/*.err; do echo "== $f"; tail -5 "$f"; done
  exit 1
fi
echo "udp_netns: all checks passed"
