#!/usr/bin/env bash
# Seeds for fuzz_pgoutput (tests/fuzz/corpus/pgoutput): real pgoutput messages from a
# throwaway PostgreSQL 15 (initdb in a temp dir, wal_level=logical), read with
# pg_logical_slot_peek_binary_changes, one file per message, plus each wrapped in an
# XLogData frame and a keepalive frame. Regenerate only when the decoder's scope changes.
set -euo pipefail
bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
out=$(cd "$(dirname "$0")" && pwd)/corpus/pgoutput
tmp=$(mktemp -d)
as_pg=()
if [[ $(id -u) -eq 0 ]]; then chown postgres "$tmp"; as_pg=(runuser -u postgres --); fi
cleanup() { "${as_pg[@]}" "$bin/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
"${as_pg[@]}" "$bin/initdb" -D "$tmp/data" -A trust -U postgres >/dev/null
printf "wal_level = logical\nlisten_addresses = ''\nunix_socket_directories = '%s'\nport = 5439\n" "$tmp" >>"$tmp/data/postgresql.conf"
"${as_pg[@]}" "$bin/pg_ctl" -D "$tmp/data" -l "$tmp/log" -w start >/dev/null
sql() { "${as_pg[@]}" psql -X -q -h "$tmp" -p 5439 -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
sql -c "CREATE TABLE a (id int PRIMARY KEY, t text, n numeric, j jsonb, b bytea, f bool, d timestamptz, u uuid, arr int[]);
        CREATE TABLE big (id int PRIMARY KEY, doc text);
        ALTER TABLE big REPLICA IDENTITY FULL;
        CREATE TYPE mood AS ENUM ('ok', 'sad');
        CREATE TABLE m (id int PRIMARY KEY, x mood);
        CREATE PUBLICATION p FOR ALL TABLES;"
sql -c "SELECT pg_create_logical_replication_slot('s', 'pgoutput')" >/dev/null
sql -c "INSERT INTO a VALUES (1, 'x', 1.5, '{\"k\": [1, null]}', '\\xdeadbeef', true, now(), gen_random_uuid(), '{1,2}'), (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
# md5 text barely compresses, so it is stored out of line: an update that leaves it alone
# sends it as 'u' (unchanged TOAST).
sql -c "INSERT INTO big SELECT 1, string_agg(md5(i::text), '') FROM generate_series(1, 400) i"
sql -c "UPDATE big SET id = 2"
sql -c "UPDATE a SET t = 'y' WHERE id = 1; UPDATE a SET id = 3 WHERE id = 2; DELETE FROM a WHERE id = 1"
sql -c "INSERT INTO m VALUES (1, 'sad')"
sql -c "ALTER TABLE a ADD COLUMN extra int; INSERT INTO a (id, extra) VALUES (9, 7)"
sql -c "DELETE FROM big"
sql -c "TRUNCATE a, m RESTART IDENTITY"
sql -c "SELECT pg_logical_emit_message(true, 'pfx', 'hello')" >/dev/null
# A transaction replayed under a replication origin carries an Origin message.
sql >/dev/null <<'SQL'
SELECT pg_replication_origin_create('upstream');
SELECT pg_replication_origin_session_setup('upstream');
BEGIN;
SELECT pg_replication_origin_xact_setup('0/ABCDEF', now());
INSERT INTO m VALUES (5, 'ok');
COMMIT;
SQL
rm -rf "$out"
mkdir -p "$out"
sql -At -c "SELECT encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes('s', NULL, NULL,
            'proto_version', '1', 'publication_names', 'p', 'messages', 'true')" >"$tmp/messages"
python3 - "$tmp/messages" "$out" <<'PY'
import struct, sys
lines = [l.strip() for l in open(sys.argv[1]) if l.strip()]
out = sys.argv[2]
for i, hexed in enumerate(lines):
    msg = bytes.fromhex(hexed)
    kind = chr(msg[0])
    open(f"{out}/msg-{i:03d}-{kind}", "wb").write(msg)
    # The same message as START_REPLICATION delivers it: 'w', start, wal end, clock.
    open(f"{out}/frame-{i:03d}-{kind}", "wb").write(b"w" + struct.pack(">QQQ", 0x1500000 + i, 0x1600000, 1234) + msg)
open(f"{out}/keepalive", "wb").write(b"k" + struct.pack(">QQB", 0x1600000, 1234, 1))
print(f"make_pgoutput_corpus: {len(lines)} messages into {out}")
PY
