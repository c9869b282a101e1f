#!/usr/bin/env bash
# Webhooks in and out, with the `rill` command only:
#
#   curl (signed, Standard Webhooks) --> rill serve A --> topic "orders" (tcp)
#        --> rill sub ... http://.../topics/orders-relayed  (signed delivery, retries)
#        --> rill serve B (verifies the signature) --> topic "orders-relayed" --> rill sub prints it
#
#   examples/webhook_in_out.sh [path/to/rill]
#
# Both servers share one secret file (a whsec_ key), so B accepts only what A's
# subscription signed. A keeps each topic in a log (fsync always: a 202 means it is on
# disk) and the delivery is durable (a message is acknowledged only once B accepted it, so
# a crash of the delivering `rill sub` loses nothing; B drops a resend by its webhook-id).
# Copy the commands you need; every process is stopped at the end.
set -euo pipefail
rill=${1:-build/release/apps/cli/rill}
work=$(mktemp -d "${TMPDIR:-/tmp}/rill-webhooks.XXXXXX")
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
base=$((20000 + RANDOM % 20000))
a_http=$base b_http=$((base + 1)) a_pub=$((base + 2)) b_pub=$((base + 3))

key_hex=$(openssl rand -hex 32)
echo "whsec_$(printf %s "$key_hex" | xxd -r -p | base64 -w0)" >"$work/secret"

# Ingress A: signed webhooks in; topic "orders" is published on tcp port a_pub and kept
# in the log $work/a-log/orders.
"$rill" serve --http "127.0.0.1:$a_http" --publish "tcp://127.0.0.1:$a_pub" --topics orders \
  --secret-file "$work/secret" --durability "persistent:$work/a-log" --fsync always 2>"$work/a.err" &
pids+=($!)
# Ingress B: the delivery target, same secret.
"$rill" serve --http "127.0.0.1:$b_http" --publish "tcp://127.0.0.1:$b_pub" --topics orders-relayed \
  --secret-file "$work/secret" 2>"$work/b.err" &
pids+=($!)
# Egress: subscribe to A's topic and deliver every message to B, signed, with retries;
# durable: its position survives a restart (state in $work, acks in A's log).
"$rill" sub "tcp://127.0.0.1:$a_pub" "http://127.0.0.1:$b_http/topics/orders-relayed" orders \
  --secret-file "$work/secret" --policy backpressure:64 --dead-letter "$work/dead.jsonl" \
  --durable relay --state-dir "$work" >"$work/deliver.out" &
pids+=($!)
# The final reader, on B's topic.
"$rill" sub "tcp://127.0.0.1:$b_pub" orders-relayed --count 3 --format json --idle-exit-ms 10000 >"$work/final.out" &
final=$!
pids+=($final)

for port in $a_http $b_http; do
  until curl -s -o /dev/null "http://127.0.0.1:$port/healthz"; do sleep 0.05; done
done
# Wait until both subscriptions are attached (their publishers report them in /metrics).
until curl -s "http://127.0.0.1:$a_http/metrics" | grep -q 'rill_topic_subscribers{topic="orders"} 1' &&
  curl -s "http://127.0.0.1:$b_http/metrics" | grep -q 'rill_topic_subscribers{topic="orders-relayed"} 1'; do
  sleep 0.05
done

# A sender signing the Standard Webhooks way: v1,base64(HMAC-SHA256(key, "id.timestamp.body")).
send() {
  local id=$1 body=$2 ts sig
  ts=$(date +%s)
  sig=$(printf '%s' "$id.$ts.$body" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key_hex" -binary | base64 -w0)
  curl -s -o /dev/null -w "POST /topics/orders ($id) -> %{http_code}\n" \
    -H "content-type: application/json" -H "webhook-id: $id" -H "webhook-timestamp: $ts" \
    -H "webhook-signature: v1,$sig" --data-binary "$body" "http://127.0.0.1:$a_http/topics/orders"
}
send msg_1 '{"order":1,"item":"tea"}'
send msg_2 '{"order":2,"item":"cake"}'
send msg_2 '{"order":2,"item":"cake"}'   # a replay: 202, but not published twice
curl -s -o /dev/null -w "unsigned POST -> %{http_code}\n" --data-binary '{"order":"forged"}' \
  "http://127.0.0.1:$a_http/topics/orders"
send msg_3 '{"order":3,"item":"jam"}'

wait "$final"
echo "what arrived on B's topic (after delivery and B's signature check):"
sed 's/^/  /' "$work/final.out"
echo "A's counters:"
curl -s "http://127.0.0.1:$a_http/metrics" | grep -E '^rill_http_(published_total|duplicates_total|auth_failures_total\{reason="missing)' |
  sed 's/^/  /'
