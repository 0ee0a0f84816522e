#!/usr/bin/env bash
# Every test: unit tests (googletest, through ctest), the SQL surface
# (pg_regress on a temporary instance), the broker sinks (test/sink, real brokers)
# and end-to-end delivery (node:test,
# real clusters, the real worker, real HTTP receivers on loopback).
# Installs what is missing first. Ends with one line "N passed, N failed".
#
#   bash scripts/test.sh                    the server whose pg_config is on PATH
#   bash scripts/test.sh --pg 18            PostgreSQL 18, built once by scripts/pg18.sh
#   bash scripts/test.sh --pg 15            Debian's postgresql-15 (/usr/lib/postgresql/15)
#   bash scripts/test.sh --pg-config PATH   the server of that pg_config
#   ... --packaging                         also (as root, with a server in Debian's layout):
#       the Debian package built, checked by lintian, installed, delivering and
#       removed (test/packaging/deb.sh: Debian's PostgreSQL 15); the PGXN
#       archive installed with pgxn into a copy of the server under test, as a
#       build without broker libraries, tested (test/packaging/pgxn.sh)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pg=
pg_config=pg_config
packaging=
while [ $# -gt 0 ]; do
    case "$1" in
        --pg) pg=${2:?--pg needs a major version}; shift 2 ;;
        --pg-config) pg_config=${2:?--pg-config needs a path}; shift 2 ;;
        --packaging) packaging=package; shift ;;
        *) echo "usage: $0 [--pg MAJOR | --pg-config PATH] [--packaging]" >&2; exit 2 ;;
    esac
done
source scripts/deps.sh
ensure_deps test $packaging && require_node 20 || exit 1
case "$pg" in
    '') ;;
    18) pg_config=$(bash scripts/pg18.sh) || { echo "could not build PostgreSQL 18"; exit 1; } ;;
    *) pg_config=/usr/lib/postgresql/$pg/bin/pg_config ;;
esac
pg_config=$(command -v "$pg_config") || { echo "no pg_config: $pg_config" >&2; exit 1; }
# Everything below uses this server: the build (PG_CONFIG), test/regress.sh
# (PG_CONFIG) and the end-to-end clusters (pg_config first on PATH).
export PG_CONFIG=$pg_config
export PATH="$("$PG_CONFIG" --bindir):$PATH"
echo "testing against $("$PG_CONFIG" --version) ($PG_CONFIG)"

build_and_install || { echo "build failed"; exit 1; }

passed=0 failed=0 log=$(mktemp)
count() { passed=$((passed + $1)); failed=$((failed + $2)); }

# Runs a suite with its output shown and kept in $log; sets $rc. A suite
# that hangs is stopped after 40 minutes (the slowest, test/e2e, takes about
# 15), so that a run always ends with its summary.
suite() {
    echo "== $1"; shift
    timeout --kill-after=30s 40m "$@" >"$log" 2>&1; rc=$?; cat "$log"
    [ "$rc" != 124 ] || echo "not ok - stopped after 40 minutes"
}

build_unit() {
    cmake -S . -B build/unit -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
        cmake --build build/unit -j"$(nproc)" >/dev/null && cd build/unit && ctest --output-on-failure
}
suite "unit tests (src/core, src/http, src/sink)" bash -c "$(declare -f build_unit); build_unit"
line=$(grep -E 'tests passed, [0-9]+ tests failed out of' "$log" | tail -1)
total=$(sed -nE 's/.* out of ([0-9]+).*/\1/p' <<<"$line"); bad=$(sed -nE 's/.* ([0-9]+) tests failed.*/\1/p' <<<"$line")
[ "$rc" = 0 ] || [ "${bad:-0}" -gt 0 ] || bad=1
count "$(( ${total:-0} - ${bad:-0} ))" "${bad:-0}"

suite "pg_regress (sql/, expected/)" test/regress.sh
ok=$(grep -cE '^(ok|test) .*\.\.\. ok|^ok [0-9]+ ' "$log" || true)
bad=$(grep -cE 'FAILED|^not ok ' "$log" || true)
[ "$rc" = 0 ] || [ "$bad" -gt 0 ] || bad=1
count "$ok" "$bad"

# The broker sinks against real nats-server (and a 3-node JetStream
# cluster), redis-server and RabbitMQ on loopback; no PostgreSQL (about 1 min).
suite "broker sinks (test/sink)" "${node_test[@]}" test/sink/
ok=$(sed -nE 's/^# pass ([0-9]+)/\1/p' "$log" | tail -1); bad=$(sed -nE 's/^# fail ([0-9]+)/\1/p' "$log" | tail -1)
[ "$rc" = 0 ] || [ "${bad:-0}" -gt 0 ] || bad=1
count "${ok:-0}" "${bad:-0}"

suite "end-to-end (test/e2e)" "${node_test[@]}" test/e2e/
ok=$(sed -nE 's/^# pass ([0-9]+)/\1/p' "$log" | tail -1); bad=$(sed -nE 's/^# fail ([0-9]+)/\1/p' "$log" | tail -1)
[ "$rc" = 0 ] || [ "${bad:-0}" -gt 0 ] || bad=1
count "${ok:-0}" "${bad:-0}"

if [ -n "$packaging" ]; then
    # Each ends with its own "N passed, N failed".
    for script in test/packaging/deb.sh test/packaging/pgxn.sh; do
        suite "$script" bash "$script"
        line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
        ok=$(sed -nE 's/^([0-9]+) passed.*/\1/p' <<<"$line"); bad=$(sed -nE 's/.* ([0-9]+) failed$/\1/p' <<<"$line")
        [ "$rc" = 0 ] || [ "${bad:-0}" -gt 0 ] || bad=1
        count "${ok:-0}" "${bad:-0}"
    done
fi

rm -f "$log"
echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
