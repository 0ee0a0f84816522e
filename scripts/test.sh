#!/usr/bin/env bash
# Every test: unit tests (googletest, through ctest), the SQL surface
# (pg_regress on a temporary instance), the broker sinks (test/sink, real brokers)
# and end-to-end delivery (node:test,
# real clusters, the real worker, real HTTP receivers on loopback); then the
# unit and sink tests again under AddressSanitizer + UndefinedBehaviorSanitizer,
# the threaded sink code (NATS, the connect threads) under ThreadSanitizer,
# the end-to-end delivery and crash tests against outbox.so built with ASan +
# UBSan, and the libFuzzer targets (OUTBOX_SANITIZERS=0 skips these; CI runs
# them in one leg: none depends on the server's version).
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
    local started=$SECONDS
    timeout --kill-after=30s 40m "$@" >"$log" 2>&1; rc=$?; cat "$log"
    [ "$rc" != 124 ] || echo "not ok - stopped after 40 minutes"
    echo "== took $(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s"
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

# The sanitizer builds (CMakeLists.txt: OUTBOX_SANITIZE) in build/asan and
# build/tsan; the broker tests drive their sink_tool (OUTBOX_SINK_TOOL).
# Any finding fails the suite: test/sanitizers/env.sh.
if [ "${OUTBOX_SANITIZERS:-1}" != 0 ]; then
    build_sanitized() {
        cmake -S . -B "build/$1" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOUTBOX_SANITIZE="$2" >/dev/null &&
            nice cmake --build "build/$1" -j"$(nproc)" >/dev/null
    }
    count_ctest() {
        line=$(grep -E 'tests passed, [0-9]+ tests failed out of' "$log" | tail -1)
        total=$(sed -nE 's/.* out of ([0-9]+).*/\1/p' <<<"$line"); bad=$(sed -nE 's/.* ([0-9]+) tests failed.*/\1/p' <<<"$line")
        [ "$rc" = 0 ] || [ "${bad:-0}" -gt 0 ] || bad=1
        count "$(( ${total:-0} - ${bad:-0} ))" "${bad:-0}"
    }
    count_node() {
        ok=$(sed -nE 's/^# pass ([0-9]+)/\1/p' "$log" | tail -1); bad=$(sed -nE 's/^# fail ([0-9]+)/\1/p' "$log" | tail -1)
        [ "$rc" = 0 ] || [ "${bad:-0}" -gt 0 ] || bad=1
        count "${ok:-0}" "${bad:-0}"
    }
    source test/sanitizers/env.sh
    suite "unit tests under ASan+UBSan" bash -c "$(declare -f build_sanitized); build_sanitized asan address && cd build/asan && ctest --output-on-failure"
    count_ctest
    # The sink tests where a peer's bytes reach the parsers (the hostile
    # brokers) and the Redis and NATS paths; RabbitMQ's own tests (its
    # broker takes half a minute to start) run unsanitized above.
    suite "broker sinks under ASan+UBSan (test/sink: hostile, redis, nats)" \
        env OUTBOX_SINK_TOOL="$root/build/asan/sink_tool" "${node_test[@]}" \
        test/sink/hostile.test.mjs test/sink/redis.test.mjs test/sink/nats.test.mjs
    count_node
    # The threads: libnats' callbacks and event-loop hooks, the connect
    # threads (Connector), the name lookup.
    suite "connect threads under TSan (unit)" bash -c "$(declare -f build_sanitized); build_sanitized tsan thread && cd build/tsan && ctest --output-on-failure -R 'Connector|BrokerSink'"
    count_ctest
    suite "NATS sink and connect threads under TSan (test/sink)" \
        env OUTBOX_SINK_TOOL="$root/build/tsan/sink_tool" "${node_test[@]}" \
        test/sink/nats.test.mjs test/sink/hostile.test.mjs
    count_node

    # The extension itself (issue 22): the end-to-end delivery and crash
    # tests against outbox.so built with ASan + UBSan, in a private copy of
    # the server (scripts/e2e-asan.sh, build/e2e-asan; the hostile test runs
    # unsanitized above), and every libFuzzer target of test/fuzz for 3 s
    # (the reply targets 6 s; scripts/fuzz.sh, clang, build/fuzz).
    ensure_deps fuzz || echo "clang-14 is missing: the fuzzing suite will fail"
    suite "end-to-end under ASan + UBSan (scripts/e2e-asan.sh: delivery, crash)" \
        bash scripts/e2e-asan.sh test/e2e/delivery.test.mjs test/e2e/crash.test.mjs
    ok=$(sed -nE 's/^# pass ([0-9]+)/\1/p' "$log" | tail -1); bad=$(sed -nE 's/^# fail ([0-9]+)/\1/p' "$log" | tail -1)
    grep -q '^ok - no sanitizer reports' "$log" && ok=$(( ${ok:-0} + 1 )) || bad=$(( ${bad:-0} + 1 ))
    [ "$rc" = 0 ] || [ "${bad:-0}" -gt 0 ] || bad=1
    count "${ok:-0}" "${bad:-0}"
    suite "fuzzing (scripts/fuzz.sh)" env OUTBOX_FUZZ_SECONDS="${OUTBOX_FUZZ_SECONDS:-3}" bash scripts/fuzz.sh
    ok=$(grep -c '^ok - ' "$log" || true); bad=$(grep -c '^not ok - ' "$log" || true)
    [ "$rc" = 0 ] || [ "$bad" -gt 0 ] || bad=1
    count "$ok" "$bad"
fi

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
