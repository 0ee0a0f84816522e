#!/usr/bin/env bash
# The demo: builds and installs outbox, starts a throwaway PostgreSQL cluster
# with it preloaded and a local receiver that verifies signatures, commits a
# transaction that writes an order and enqueues events (and rolls one back),
# shows what the receiver got, and cleans everything up.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/deps.sh

section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

section "installing what is missing, building and installing the extension"
ensure_deps
build_and_install
bindir=$(pg_config --bindir)

work=$(mktemp -d /tmp/outbox-demo.XXXXXX)
receiver_pid=
cleanup() {
    set +e
    [ -n "$receiver_pid" ] && kill "$receiver_pid" 2>/dev/null
    if [ -f "$work/data/postmaster.pid" ]; then as_postgres "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1; fi
    rm -rf "$work"
}
trap cleanup EXIT
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres: "$work"

port=$((20000 + RANDOM % 20000))
receiver_port=$((40000 + RANDOM % 20000))
secret="whsec_$(head -c 24 /dev/urandom | base64)"

section "starting a throwaway cluster in $work"
as_postgres "$bindir/initdb" -D "$work/data" --auth=trust --no-sync -E UTF8 --locale=C -U postgres >/dev/null
cat >> "$work/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$work'
port = $port
shared_preload_libraries = 'outbox'
outbox.database = 'shop'
outbox.url = 'http://127.0.0.1:$receiver_port/hook'
outbox.secret = '$secret'
outbox.allowed_networks = '127.0.0.1/32'   # the receiver is on loopback
CONF
as_postgres "$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w start >/dev/null
psql=(psql -X -q -h "$work" -p "$port" -U postgres -v ON_ERROR_STOP=1)
"${psql[@]}" -d postgres -c 'CREATE DATABASE shop'
"${psql[@]}" -d shop -c 'CREATE EXTENSION outbox' -c 'CREATE TABLE orders (id int PRIMARY KEY, total numeric NOT NULL)'
echo "  postgresql.conf: shared_preload_libraries = 'outbox', outbox.url = 'http://127.0.0.1:$receiver_port/hook', outbox.secret = 'whsec_…'"

section "starting a receiver that verifies signatures with the standardwebhooks package"
node scripts/receiver.mjs --port "$receiver_port" --secret "$secret" &
receiver_pid=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$receiver_port") 2>/dev/null && break
    sleep 0.05
done

section "waiting for the outbox worker (pg_stat_activity)"
for _ in $(seq 100); do
    workers=$("${psql[@]}" -d shop -Atc "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'outbox worker'")
    [ "$workers" -ge 1 ] && break
    sleep 0.1
done
"${psql[@]}" -d shop -c "SELECT pid, backend_type, state FROM pg_stat_activity WHERE backend_type LIKE 'outbox%'"

section "a transaction that writes an order and enqueues two events, then COMMITs"
cat <<'SQL' | tee /dev/stderr | "${psql[@]}" -d shop
BEGIN;
INSERT INTO orders VALUES (42, 99.50);
SELECT outbox.enqueue('order.created', '{"id": 42, "total": 99.5}', key => 'order-42');
SELECT outbox.enqueue('order.paid', '{"id": 42, "method": "card"}', key => 'order-42');
COMMIT;
SQL

section "a transaction that enqueues an event, then ROLLs BACK: nothing will be sent"
cat <<'SQL' | tee /dev/stderr | "${psql[@]}" -d shop
BEGIN;
INSERT INTO orders VALUES (43, 10);
SELECT outbox.enqueue('order.created', '{"id": 43}', key => 'order-43');
ROLLBACK;
SQL

section "waiting for the worker to deliver"
for _ in $(seq 200); do
    delivered=$("${psql[@]}" -d shop -Atc "SELECT count(*) FROM outbox.deliveries WHERE state = 'delivered'")
    [ "$delivered" -ge 2 ] && break
    sleep 0.05
done
sleep 0.2

section "delivery state in outbox.deliveries"
"${psql[@]}" -d shop -c "SELECT e.topic, e.key, d.state, d.attempts, d.last_status,
       round(extract(epoch FROM d.finished_at - e.created_at) * 1000) AS ms_from_begin_to_delivered
FROM outbox.deliveries d JOIN outbox.events e ON e.id = d.event_id ORDER BY e.seq"
"${psql[@]}" -d shop -c "SELECT count(*) AS rolled_back_events_stored FROM outbox.events WHERE payload->>'id' = '43'"

section "done: the cluster and the receiver are cleaned up"
