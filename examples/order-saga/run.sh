#!/usr/bin/env bash
# The order saga with a throwaway cluster: builds and installs outbox,
# starts the three services (inventory, payment, fulfilment) on loopback
# and PostgreSQL with outbox preloaded, loads schema.sql and endpoints.sql,
# starts $SAGAS sagas, waits for every one to end, prints what happened and
# cleans everything up (KEEP=1: keeps it all running until Ctrl-C).
# Usage (Debian, as root; installs what is missing):
#   bash examples/order-saga/run.sh              SAGAS=20 by default
#   FAIL_RATE=0.2 REFUSE_RATE=0.1 SLOW_RATE=0.1 bash examples/order-saga/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$root/scripts/deps.sh"
sagas=${SAGAS:-20}
# From /: the postgres user may not be allowed into the directory this runs from.
as_postgres() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "installing what is missing, building and installing the extension"
ensure_deps
build_and_install
bindir=$("${PG_CONFIG:-pg_config}" --bindir)

work=$(mktemp -d /tmp/outbox-saga.XXXXXX)
service_pids=()
cleanup() {
    set +e
    for pid in "${service_pids[@]}"; do kill "$pid" 2>/dev/null; done
    [ -f "$work/data/postmaster.pid" ] && as_postgres "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[ "$(id -u)" = 0 ] && chown postgres: "$work"

secret="whsec_$(head -c 24 /dev/urandom | base64)"
timeout=2s  # the request timeout; a slow answer comes after 3 s
say "starting the services (they fail, refuse and answer late at random)"
declare -A url
for name in inventory payment fulfilment; do
    node "$here/services/$name.mjs" --secret "$secret" --state "$work/$name.jsonl" \
        --fail-rate "${FAIL_RATE:-0.2}" --refuse-rate "${REFUSE_RATE:-0.1}" \
        --slow-rate "${SLOW_RATE:-0.1}" --slow-ms 3000 >"$work/$name.log" 2>&1 &
    service_pids+=($!)
    for _ in $(seq 100); do
        url[$name]=$(sed -nE 's/.* listening on (http[^ ]+).*/\1/p' "$work/$name.log")
        [ -n "${url[$name]}" ] && break
        sleep 0.1
    done
    [ -n "${url[$name]}" ] || { cat "$work/$name.log" >&2; exit 1; }
    echo "  $name: ${url[$name]} (its record of every answer: $work/$name.jsonl)"
done

pgport=$((20000 + RANDOM % 20000))  # names the Unix socket only: no TCP
say "starting a throwaway cluster in $work"
as_postgres "$bindir/initdb" -D "$work/data" --auth=trust --no-sync -E UTF8 --locale=C -U postgres >/dev/null
cat >> "$work/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$work'
port = $pgport
shared_preload_libraries = 'outbox'
outbox.database = 'shop'
outbox.allowed_networks = '127.0.0.1/32'   # the services are on loopback, refused by default
outbox.retry_base = '200ms'                # retries come quickly, for the demonstration
outbox.retry_max = '2s'
CONF
as_postgres "$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w start >/dev/null ||
    { tail -n 20 "$work/server.log" >&2; exit 1; }
psql=("$bindir/psql" -X -q -h "$work" -p "$pgport" -U postgres -v ON_ERROR_STOP=1)
"${psql[@]}" -d postgres -c 'CREATE DATABASE shop'
"${psql[@]}" -d shop -c 'CREATE EXTENSION outbox' -f "$here/schema.sql"
"${psql[@]}" -d shop -v inventory="${url[inventory]}" -v payment="${url[payment]}" \
    -v fulfilment="${url[fulfilment]}" -v secret="$secret" -v timeout="$timeout" -f "$here/endpoints.sql"

say "starting $sagas sagas, as the application (role saga_app)"
"${psql[@]}" -d shop <<SQL
SET ROLE saga_app;
SELECT count(order_saga.start(i, 'customer-' || i, 'sku-' || (i % 5), 1 + i % 3, 1000 * i))
FROM generate_series(1, $sagas) AS i;
SQL

say "waiting for every saga to complete or be compensated (at most 2 minutes)"
for _ in $(seq 1200); do
    left=$("${psql[@]}" -d shop -Atc "SELECT count(*) FROM order_saga.sagas WHERE state NOT IN ('completed', 'compensated')")
    [ "$left" = 0 ] && break
    sleep 0.1
done
"${psql[@]}" -d shop -c "SELECT id, customer, state, failure, reservation_id, payment_id, shipment_id,
       compensation_resends AS resends FROM order_saga.sagas ORDER BY id"
[ "$left" = 0 ] || echo "$left sagas have not ended yet"

say "the moves of the compensated sagas (order_saga.history)"
"${psql[@]}" -d shop -c "SELECT saga_id, string_agg(coalesce(from_state || ' -> ', '') || to_state, ', ' ORDER BY at) AS moves
FROM order_saga.history WHERE saga_id IN (SELECT id FROM order_saga.sagas WHERE state = 'compensated')
GROUP BY saga_id ORDER BY saga_id"

say "the deliveries: attempts and callbacks"
"${psql[@]}" -d shop -c "SELECT e.name AS endpoint, count(*) AS deliveries, sum(d.attempts) AS attempts,
       count(*) FILTER (WHERE d.state = 'dead') AS dead,
       count(*) FILTER (WHERE d.callback_state = 'done') AS callbacks_done
FROM outbox.deliveries d JOIN outbox.endpoints e ON e.id = d.endpoint_id GROUP BY 1 ORDER BY 1"

say "what the services did (their records: effect = acted, replay = a retry answered from the record)"
for name in inventory payment fulfilment; do
    node -e '
        const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
        const count = {};
        for (const l of lines) {
            const what = l.replay ? "replay" : l.effect ? "effect" : "no effect";
            count[`${l.op} ${what}`] = (count[`${l.op} ${what}`] || 0) + 1;
        }
        console.log(`  ${process.argv[2]}: ` + Object.entries(count).map(([k, v]) => `${k} ${v}`).join(", "));
    ' "$work/$name.jsonl" "$name"
done

if [ -n "${KEEP:-}" ]; then
    echo
    echo "database: ${psql[*]} -d shop"
    echo "running until Ctrl-C (then the cluster and the services are removed)"
    wait "${service_pids[0]}"
fi
