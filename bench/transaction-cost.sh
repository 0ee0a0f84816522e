#!/usr/bin/env bash
# What a worker transaction costs by size, for two builds side by side: in
# a throwaway cluster per build (PG_CONFIG_A, PG_CONFIG_B; claimdb, which no
# worker serves), events enqueued and committed beforehand, then T
# transactions of outbox.dispatch_and_lease(n) + outbox.record() of what it
# leased + COMMIT (the worker's transaction for n events, through the relay
# functions, which run the worker's code), n = 1, 10, 100. Reported: the
# backend's CPU (utime + stime from /proc) per transaction and per event;
# rounds alternate A and B so that a shared machine's drift falls on both.
#
#   bash bench/transaction-cost.sh PG_CONFIG_A PG_CONFIG_B [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
a=$1 b=$2 rounds=${3:-3}
source "$here/lib/cluster.sh"
tmp=$(mktemp -d /tmp/outbox-txcost.XXXXXX)
chmod 755 "$tmp"
cleanup() {
    for v in a b; do PATH="$("${!v}" --bindir):$PATH" cluster_stop "$tmp/$v"; done
    rm -rf "$tmp"
}
trap cleanup EXIT
declare -A port
for v in a b; do
    port[$v]=$(( 40000 + RANDOM % 20000 ))
    PATH="$("${!v}" --bindir):$PATH" cluster_start "$tmp/$v" "${port[$v]}" 9
done

# psql on build v's cluster, database claimdb.
q() { local v=$1; shift; "$("${!v}" --bindir)/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$tmp/$v" -p "${port[$v]}" -U postgres -d claimdb "$@"; }

# One measurement: T transactions of up to n events on build v (a dispatch
# pass ends with a call that finds nothing: such a transaction is not
# counted, its CPU is); prints CPU ms per counted transaction and per event.
measure() {
    local v=$1 n=$2 t=$3
    q "$v" <<SQL
SELECT count(outbox.enqueue('bench.cost', '{"n": 1}')) FROM generate_series(1, $t * $n) \\g /dev/null
SELECT pg_backend_pid() AS pid \\gset
\\setenv PID :pid
\\! awk '{print \$14 + \$15}' /proc/\$PID/stat > $tmp/cpu0
DO \$\$
DECLARE r record; k integer; events integer := 0; txns integer := 0;
BEGIN
  FOR i IN 1..$t LOOP
    SELECT * INTO r FROM outbox.dispatch_and_lease($n, true, 60000, ARRAY[0], ARRAY[$n]);
    k := coalesce(cardinality(r.leased_events), 0);
    IF k > 0 THEN
      PERFORM outbox.record(r.leased_events, r.leased_endpoints, array_fill(1, ARRAY[k]),
                            array_fill('delivered'::text, ARRAY[k]), array_fill(0::bigint, ARRAY[k]),
                            array_fill(204, ARRAY[k]), array_fill(NULL::text, ARRAY[k]),
                            array_fill(1000::bigint, ARRAY[k]), array_fill(NULL::text, ARRAY[k]));
      events := events + k;
      txns := txns + 1;
    END IF;
    COMMIT;
  END LOOP;
  PERFORM set_config('bench.counted', txns || ' ' || events, false);
END \$\$;
\\! awk '{print \$14 + \$15}' /proc/\$PID/stat > $tmp/cpu1
SELECT current_setting('bench.counted') \\g $tmp/counted
SQL
    local ticks hz
    ticks=$(( $(cat "$tmp/cpu1") - $(cat "$tmp/cpu0") ))
    hz=$(getconf CLK_TCK)
    read -r txns events <"$tmp/counted"
    [ "$events" -ge $(( t * n / 2 )) ] || { echo "build $v, n $n: only $events events in $txns transactions" >&2; exit 1; }
    awk -v t="$ticks" -v hz="$hz" -v x="$txns" -v e="$events" 'BEGIN { printf "%.4f %.4f\n", t * 1000 / hz / x, t * 1000 / hz / e }'
}

declare -A txns=([1]=1000 [10]=300 [100]=40)
# Warm-up: plans, caches.
for v in a b; do measure "$v" 1 50 >/dev/null; done
echo "round,n,build,cpu_ms_per_transaction,cpu_ms_per_event"
for r in $(seq 1 "$rounds"); do
    order="a b"; [ $((r % 2)) = 0 ] && order="b a"
    for n in 1 10 100; do
        for v in $order; do
            read -r per_txn per_event < <(measure "$v" "$n" "${txns[$n]}")
            echo "$r,$n,$v,$per_txn,$per_event"
            q "$v" -c "TRUNCATE outbox.events, outbox.deliveries, outbox.attempts" -c "VACUUM outbox.events, outbox.deliveries"
        done
    done
done
