#!/usr/bin/env bash
# HTTP ingress speed: wrk keep-alive POSTs of 256-byte bodies to `rill serve` (each one
# published to a `rill sub` on the publish endpoint) beside nginx on one worker answering
# 204 to the same requests: same wrk settings, same duration, alternating rounds in one run.
#
#   perf/http_perf.sh [--rill PATH] [--rounds N] [--duration S] [--connections C] [--json FILE]
#
# Prints one line per round and a JSON summary: medians of requests/s and p99 latency
# for each side, and the ratios rill/nginx (throughput: higher is better; p99: lower is better).
# Placement: the server under test (nginx worker, or rill serve) on CPU 1; wrk and the
# subscriber on CPU 0. Needs: wrk, nginx (scripts/setup.sh installs both).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rill=$repo/build/release/apps/cli/rill
rounds=3
duration=5
connections=32
json=""
while (($#)); do
  case "$1" in
    --rill) rill=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "http_perf.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
for tool in wrk nginx taskset; do
  command -v "$tool" >/dev/null || { echo "http_perf.sh: '$tool' missing (run scripts/setup.sh)" >&2; exit 2; }
done
[[ -x $rill ]] || { echo "http_perf.sh: no rill binary at $rill (scripts/build.sh release)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/rill-http-perf.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {  # url
  for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done
  echo "http_perf.sh: $1 did not come up" >&2; exit 1
}

cat >"$work/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = string.rep("x", 256)
wrk.headers["Content-Type"] = "application/octet-stream"
EOF

# nginx: one worker, no logs, keep-alive without a request cap, 204 for everything.
nginx_port=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$nginx_port;
    location / { return 204; }
  }
}
EOF
taskset -c 1 nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
pids+=($!)

http_port=$(free_port)
pub_port=$(free_port)
taskset -c 1 "$rill" serve --http "127.0.0.1:$http_port" --publish "tcp://127.0.0.1:$pub_port" --topics bench \
  2>"$work/serve.err" &
pids+=($!)
taskset -c 0 "$rill" sub "tcp://127.0.0.1:$pub_port" bench --format text >/dev/null 2>"$work/sub.err" &
pids+=($!)
wait_http "http://127.0.0.1:$nginx_port/"
wait_http "http://127.0.0.1:$http_port/healthz"
for _ in $(seq 100); do
  curl -s "http://127.0.0.1:$http_port/metrics" | grep -q 'rill_topic_subscribers{topic="bench"} 1' && break
  sleep 0.05
done

# run_wrk URL -> "requests_per_s p99_ms non2xx"
run_wrk() {
  local out
  out=$(taskset -c 0 wrk -t1 -c"$connections" -d"${duration}s" --latency -s "$work/post.lua" "$1")
  local rps p99 bad
  rps=$(sed -n 's/^Requests\/sec: *//p' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; print v}' <<<"$out")
  bad=$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' <<<"$out")
  echo "$rps $p99 ${bad:-0}"
}

run_wrk "http://127.0.0.1:$nginx_port/topics/bench" >/dev/null  # warm-up both
run_wrk "http://127.0.0.1:$http_port/topics/bench" >/dev/null
nginx_rps=(); nginx_p99=(); rill_rps=(); rill_p99=()
for r in $(seq "$rounds"); do
  read -r a b c < <(run_wrk "http://127.0.0.1:$nginx_port/topics/bench")
  read -r d e f < <(run_wrk "http://127.0.0.1:$http_port/topics/bench")
  echo "round $r: nginx ${a} req/s p99 ${b} ms (non-2xx $c) | rill serve ${d} req/s p99 ${e} ms (non-2xx $f)"
  nginx_rps+=("$a"); nginx_p99+=("$b"); rill_rps+=("$d"); rill_p99+=("$e")
  [[ $c == 0 && $f == 0 ]] || { echo "http_perf.sh: non-2xx answers in round $r" >&2; exit 1; }
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
n_rps=$(median "${nginx_rps[@]}"); n_p99=$(median "${nginx_p99[@]}")
r_rps=$(median "${rill_rps[@]}"); r_p99=$(median "${rill_p99[@]}")
published=$(curl -s "http://127.0.0.1:$http_port/metrics" | sed -n 's/^rill_http_published_total //p')
summary=$(awk -v nr="$n_rps" -v np="$n_p99" -v rr="$r_rps" -v rp="$r_p99" -v c="$connections" -v d="$duration" \
  -v k="$rounds" -v pub="$published" 'BEGIN {
  printf "{\"transport\":\"http\",\"size\":256,\"connections\":%d,\"duration_s\":%d,\"rounds\":%d,", c, d, k;
  printf "\"rill\":{\"requests_s\":%.0f,\"p99_ms\":%.3f,\"published_total\":%d},", rr, rp, pub;
  printf "\"baseline\":{\"name\":\"nginx-204\",\"requests_s\":%.0f,\"p99_ms\":%.3f},", nr, np;
  printf "\"ratio\":{\"requests_s\":%.2f,\"p99\":%.2f}}\n", rr / nr, rp / np }')
echo "$summary"
[[ -z $json ]] || echo "$summary" >"$json"
