#!/usr/bin/env bash
# The Next.js checkout example with a throwaway cluster: builds and installs
# outbox, starts PostgreSQL with it preloaded (its default endpoint is the
# app's webhook route), creates the shop's schema, builds the app (once) and
# serves it on loopback until Ctrl-C, which cleans everything up.
# Usage (Debian, as root; installs what is missing):
#   bash examples/nextjs-checkout/run.sh        PORT=3000 by default
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$root/scripts/deps.sh"
port=${PORT:-3000}
# From /: the postgres user may not be allowed into the directory this runs from.
as_postgres() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
say() { printf '\033[1m== %s\033[0m\n' "$*"; }

say "installing what is missing, building and installing the extension"
ensure_deps
require_node 20  # Next.js 16
build_and_install
bindir=$("${PG_CONFIG:-pg_config}" --bindir)

cd "$here"
export NEXT_TELEMETRY_DISABLED=1
# npm ci when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    say "installing the app's npm packages"
    npm ci --no-audit --no-fund --loglevel=error
fi
# next build when there is no build or a source is newer than it.
if [ ! -f .next/BUILD_ID ] || [ -n "$(find app lib next.config.mjs package-lock.json -newer .next/BUILD_ID | head -1)" ]; then
    say "building the app (next build)"
    node_modules/.bin/next build
fi

work=$(mktemp -d /tmp/outbox-nextjs.XXXXXX)
app_pid=
cleanup() {
    set +e
    [ -n "$app_pid" ] && kill -- "-$app_pid" 2>/dev/null && wait "$app_pid" 2>/dev/null
    [ -f "$work/data/postmaster.pid" ] && as_postgres "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[ "$(id -u)" = 0 ] && chown postgres: "$work"

secret=${WEBHOOK_SECRET:-whsec_$(head -c 24 /dev/urandom | base64)}
pgport=$((20000 + RANDOM % 20000))  # names the Unix socket only: no TCP
say "starting a throwaway cluster in $work"
as_postgres "$bindir/initdb" -D "$work/data" --auth=trust --no-sync -E UTF8 --locale=C -U postgres >/dev/null
cat >> "$work/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$work'
port = $pgport
shared_preload_libraries = 'outbox'
outbox.database = 'shop'
outbox.url = 'http://127.0.0.1:$port/api/webhooks'
outbox.secret = '$secret'
outbox.allowed_networks = '127.0.0.1/32'   # the app is on loopback, refused by default
CONF
as_postgres "$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w start >/dev/null ||
    { tail -n 20 "$work/server.log" >&2; exit 1; }
psql=("$bindir/psql" -X -q -h "$work" -p "$pgport" -U postgres -v ON_ERROR_STOP=1)
"${psql[@]}" -d postgres -c 'CREATE DATABASE shop'
"${psql[@]}" -d shop -f schema.sql

say "starting the app (next start)"
# Its own process group, so that cleanup stops the server and its children.
PGHOST=$work PGPORT=$pgport PGUSER=shop PGDATABASE=shop WEBHOOK_SECRET=$secret \
    setsid node_modules/.bin/next start -H 127.0.0.1 -p "$port" &
app_pid=$!
for _ in $(seq 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$app_pid" 2>/dev/null || { echo "the app did not start" >&2; exit 1; }
    sleep 0.1
done
echo "database: ${psql[*]} -d shop"
echo "ready: http://127.0.0.1:$port/   (Ctrl-C stops the app and removes the cluster)"
wait "$app_pid"
