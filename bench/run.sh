#!/usr/bin/env bash
# The benchmarks of issue 6, side by side in one run:
#
#   bash bench/run.sh [--quick|--full] [--no-build]
#
#   (default)  100k-event drain, 60 s load run, claim cost at 1M pending
#   --quick    the same at a smaller scale, about five minutes
#   --full     1M-event drain, more and longer rounds
#   --no-build use the installed extension and the built micro_bench as they are
#   --only=a,b run only some measurements: sink micro enqueue claim stats drain mix callbacks
#              prune fanout attempts limited keyed tls brokers hostile pgNet load pollingDrain
#              latency databases (prune needs drain)
#   --pg-net=DIR build pg_net from the source tree DIR (supabase/pg_net, not
#              kept here) and compare it side by side (pgNet); without it
#              that row says it was skipped
#
# Installs what is missing (apt: nginx, gnuplot-nox, wrk, PgQ, build tools, and
# nats-server, rabbitmq-server, redis-server; npm: package.json), builds and
# installs the extension, then runs everything on a throwaway cluster, an
# nginx, node receivers and (brokers) the three brokers, all on loopback.
# Prints a table, writes bench/results/latest.json and PNG charts into
# bench/results/. Cleans up every process and directory it made on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
mode=default build=1 only="" pg_net_src=""
for arg in "$@"; do
    case "$arg" in
        --quick) mode=quick ;;
        --full) mode=full ;;
        --no-build) build=0 ;;
        --only=*) only=${arg#--only=} ;;
        --pg-net=*) pg_net_src=$(cd "${arg#--pg-net=}" && pwd) || { echo "no such directory: ${arg#--pg-net=}" >&2; exit 2; } ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $arg (use --quick, --full or --no-build)" >&2; exit 2 ;;
    esac
done

source "$root/scripts/deps.sh"
source "$here/lib/cluster.sh"
source "$here/lib/nginx.sh"

# PgQ: the anchor of row 1 (enqueue() against pgq.insert_event).
ensure_deps test nginx gnuplot-nox wrk "postgresql-$debian_pg-pgq3" && require_node 20 || exit 1
export PATH="$(pg_config --bindir):$PATH"

if [ "$build" = 1 ]; then
    echo "== building and installing the extension"
    build_and_install
    echo "== building micro_bench"
    cmake -S "$root" -B "$root/build/unit" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$root/build/unit" --target micro_bench -j"$(nproc)" >/dev/null
fi

tmp=$(mktemp -d /tmp/outbox-bench.XXXXXX)
chmod 755 "$tmp"
nginx_pid=""

# Ends every process this script started (its descendants, by pid), the
# nginx and the cluster, and removes the scratch directory.
kill_tree() {
    local pid=$1 child
    for child in $(pgrep -P "$pid" 2>/dev/null || true); do kill_tree "$child"; done
    kill "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for child in $(pgrep -P $$ 2>/dev/null || true); do kill_tree "$child"; done
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
    cluster_stop "$tmp/pg"
    wait 2>/dev/null || true
    if [ "$rc" != 0 ] && [ -f "$tmp/pg/postgres.log" ]; then
        echo "--- last lines of the server log" >&2
        tail -n 30 "$tmp/pg/postgres.log" >&2 || true
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}

sink_port=$(free_port)
tls_port=$(free_port)
pg_port=$(( 40000 + RANDOM % 20000 ))

if [ -n "$pg_net_src" ]; then
    # A copy, so that the source tree stays as it was given.
    echo "== building pg_net from $pg_net_src"
    cp -a "$pg_net_src" "$tmp/pg_net-build"
    make -C "$tmp/pg_net-build" -s -j"$(nproc)" PG_CONFIG="$(command -v pg_config)" >"$tmp/pg_net-build.log" 2>&1 &&
        make -C "$tmp/pg_net-build" -s install PG_CONFIG="$(command -v pg_config)" >>"$tmp/pg_net-build.log" 2>&1 || {
        tail -20 "$tmp/pg_net-build.log" >&2; echo "pg_net did not build" >&2; exit 1; }
    export BENCH_PGNET=1
fi

echo "== starting nginx on 127.0.0.1:$sink_port and a cluster in $tmp/pg (mode: $mode)"
nginx_start "$tmp/nginx" "$sink_port" "$tls_port"
cluster_start "$tmp/pg" "$pg_port" "$sink_port"

mkdir -p "$here/results"
# In the background, so that a signal runs the cleanup at once instead of
# after the harness has finished.
BENCH_MODE=$mode BENCH_TMP=$tmp BENCH_PGHOST=$tmp/pg BENCH_PGPORT=$pg_port \
BENCH_PGDATA=$tmp/pg/data BENCH_SINK_PORT=$sink_port BENCH_TLS_PORT=$tls_port BENCH_ROOT=$root \
BENCH_RESULTS=$here/results BENCH_ONLY=$only \
    node "$here/harness.mjs" &
harness_pid=$!
wait "$harness_pid"
