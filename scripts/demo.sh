#!/usr/bin/env bash
# The demo: builds and installs outbox, starts a throwaway PostgreSQL cluster
# with it preloaded and a local receiver that verifies signatures, commits a
# transaction that writes an order and enqueues events (and rolls one back),
# shows what the receiver got, and cleans everything up.
# Usage (Debian, as root; installs what is missing): bash scripts/demo.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/deps.sh

section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# From /: the postgres user may not be allowed into the directory this runs
# from (a clone under /root or mktemp -d), and pg_ctl would say so.
as_postgres() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

section "installing what is missing, building and installing the extension"
ensure_deps
build_and_install
bindir=$(pg_config --bindir)
echo "  installed $(pg_config --pkglibdir)/outbox.so"

work=$(mktemp -d /tmp/outbox-demo.XXXXXX)
receiver_pid=
cleanup() {
    set +e
    [ -n "$receiver_pid" ] && kill "$receiver_pid" 2>/dev/null && wait "$receiver_pid" 2>/dev/null
    if [ -f "$work/data/postmaster.pid" ]; then
        as_postgres "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[ "$(id -u)" = 0 ] && chown postgres: "$work"

# Shows the end of the server log and stops the demo.
fail() {
    echo "demo failed: $*" >&2
    echo "--- last lines of the server log" >&2
    tail -n 20 "$work/server.log" >&2 || true
    exit 1
}

secret="whsec_$(head -c 24 /dev/urandom | base64)"

section "starting a receiver that verifies signatures with the standardwebhooks package"
node test/lib/sink.mjs --host 127.0.0.1 --port 0 --secret "$secret" >"$work/receiver.log" 2>&1 &
receiver_pid=$!
url=
for _ in $(seq 200); do
    url=$(sed -nE 's/.*listening on (http[^ ]+).*/\1/p' "$work/receiver.log")
    [ -n "$url" ] && break
    kill -0 "$receiver_pid" 2>/dev/null || { cat "$work/receiver.log" >&2; fail "the receiver did not start"; }
    sleep 0.05
done
[ -n "$url" ] || fail "the receiver did not start"
echo "  receiver: $url (prints one line per webhook: time, ✓/✗ signature, webhook-id, body)"

port=$((20000 + RANDOM % 20000))  # only names the Unix socket: the server listens on no TCP port
section "starting a throwaway cluster in $work (Unix socket only)"
as_postgres "$bindir/initdb" -D "$work/data" --auth=trust --no-sync -E UTF8 --locale=C -U postgres >/dev/null
cat >> "$work/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$work'
port = $port
shared_preload_libraries = 'outbox'
outbox.database = 'shop'
outbox.url = '$url'
outbox.secret = '$secret'
outbox.allowed_networks = '127.0.0.1/32'   # the receiver is on loopback
CONF
as_postgres "$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w start >/dev/null || fail "the server did not start"
psql=("$bindir/psql" -X -q -h "$work" -p "$port" -U postgres -v ON_ERROR_STOP=1)
"${psql[@]}" -d postgres -c 'CREATE DATABASE shop'
"${psql[@]}" -d shop -c 'CREATE EXTENSION outbox' -c 'CREATE TABLE orders (id int PRIMARY KEY, total numeric NOT NULL)'
cat <<EOF
  postgresql.conf:
    shared_preload_libraries = 'outbox'
    outbox.database = 'shop'
    outbox.url = '$url'
    outbox.secret = 'whsec_…'                  (generated for this run)
    outbox.allowed_networks = '127.0.0.1/32'   (loopback is refused by default)
EOF

section "the outbox worker runs inside the server (pg_stat_activity)"
for _ in $(seq 100); do
    workers=$("${psql[@]}" -d shop -Atc "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'outbox worker'")
    [ "$workers" -ge 1 ] && break
    sleep 0.1
done
[ "$workers" -ge 1 ] || fail "no outbox worker in pg_stat_activity"
"${psql[@]}" -d shop -c "SELECT pid, backend_type, state FROM pg_stat_activity WHERE backend_type LIKE 'outbox%'"

section "a transaction that writes an order and enqueues two events, then COMMITs"
sql_commit=$(cat <<'SQL'
BEGIN;
INSERT INTO orders VALUES (42, 99.50);
SELECT outbox.enqueue('order.created', '{"id": 42, "total": 99.5}', key => 'order-42');
SELECT outbox.enqueue('order.paid', '{"id": 42, "method": "card"}', key => 'order-42');
COMMIT;
SQL
)
sed 's/^/  /' <<<"$sql_commit"
"${psql[@]}" -d shop -At <<<"$sql_commit" | sed 's/^/  -> webhook-id /'

section "a transaction that enqueues an event, then ROLLs BACK: nothing will be sent"
sql_rollback=$(cat <<'SQL'
BEGIN;
INSERT INTO orders VALUES (43, 10);
SELECT outbox.enqueue('order.created', '{"id": 43}', key => 'order-43');
ROLLBACK;
SQL
)
sed 's/^/  /' <<<"$sql_rollback"
"${psql[@]}" -d shop -At <<<"$sql_rollback" | sed 's/^\(.*\)$/  -> webhook-id \1 (rolled back: never sent)/'

section "waiting for the worker to deliver (at most 30 s)"
received() { grep -cE '^  [0-9:.]+  (✓|✗|\?) ' "$work/receiver.log" || true; }
delivered=0
for _ in $(seq 300); do
    delivered=$("${psql[@]}" -d shop -Atc "SELECT count(*) FROM outbox.deliveries WHERE state = 'delivered'")
    [ "$delivered" -ge 2 ] && [ "$(received)" -ge 2 ] && break
    sleep 0.1
done
[ "$delivered" -ge 2 ] || fail "only $delivered of 2 events delivered after 30 s"
echo "  $delivered delivered"

section "what the receiver got"
cat "$work/receiver.log"

section "delivery state in outbox.deliveries"
"${psql[@]}" -d shop -c "SELECT e.topic, e.key, d.state, d.attempts, d.last_status,
       round(extract(epoch FROM d.finished_at - e.created_at) * 1000) AS ms_from_enqueue_to_delivered
FROM outbox.deliveries d JOIN outbox.events e ON e.id = d.event_id ORDER BY e.seq"

section "the rolled-back transaction left nothing behind"
"${psql[@]}" -d shop -c "SELECT (SELECT count(*) FROM orders WHERE id = 43) AS order_43_rows,
       (SELECT count(*) FROM outbox.events WHERE payload->>'id' = '43') AS order_43_events"

section "done: the cluster and the receiver are cleaned up"
