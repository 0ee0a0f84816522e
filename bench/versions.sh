#!/usr/bin/env bash
# Two builds of the extension side by side in one run: each installed in
# its own PostgreSQL installation (PG_CONFIG_A, PG_CONFIG_B), measured by
# `run.sh --no-build` in alternating order (A B, B A, A B, ...), so that a
# shared machine's drift falls on both. Reports per pair the ratio B / A
# of the workers' CPU per event at 1,000 events/s (bench/latency.mjs, all
# workers, utime + stime), of the latencies and of the drain rate, and the
# median of the ratios.
#
#   bash bench/versions.sh PG_CONFIG_A PG_CONFIG_B [PAIRS] [run.sh options]
#
# e.g. A = a build of main (0.2.0), B = this branch; PAIRS defaults to 2;
# options default to --quick --only=drain,mix,latency. Each run's latest.json
# is kept as bench/results/versions-{a,b}-N.json.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
a=$1 b=$2 pairs=${3:-2}
shift $(( $# < 3 ? $# : 3 ))
options=("$@")
[ "${#options[@]}" -gt 0 ] || options=(--quick --only=drain,mix,latency)
mkdir -p "$here/results"

run() {  # label pg_config n
    echo "== $1 ($2), run $3"
    PATH="$("$2" --bindir):$PATH" PG_CONFIG="$2" bash "$here/run.sh" --no-build "${options[@]}" >"$here/results/versions-$1-$3.log" 2>&1 ||
        { tail -30 "$here/results/versions-$1-$3.log" >&2; exit 1; }
    cp "$here/results/latest.json" "$here/results/versions-$1-$3.json"
}

for i in $(seq 1 "$pairs"); do
    if [ $((i % 2)) = 1 ]; then run a "$a" "$i"; run b "$b" "$i"; else run b "$b" "$i"; run a "$a" "$i"; fi
done

node - "$here/results" "$pairs" <<'JS'
const fs = require('node:fs');
const [dir, pairs] = [process.argv[2], Number(process.argv[3])];
const pick = (label, i) => {
  const r = JSON.parse(fs.readFileSync(`${dir}/versions-${label}-${i}.json`, 'utf8')).results;
  const out = {};
  for (const s of r.latency?.scenarios ?? []) {
    if (s.system !== 'outbox') continue;
    const name = `${s.rate}${s.afterDrain ? ' after drain' : ''}`;
    if (s.workerCpuMsPerEvent !== undefined) out[`cpu ms/event, ${name}`] = s.workerCpuMsPerEvent;
    out[`p50 ms, ${name}`] = s.p50;
    out[`p99 ms, ${name}`] = s.p99;
  }
  if (r.drain?.eventsPerSecond) out['drain events/s'] = r.drain.eventsPerSecond;
  if (r.mix?.eventsPerSecond) out['mix drain events/s'] = r.mix.eventsPerSecond;
  return out;
};
const median = (xs) => { const s = [...xs].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const rows = {};
for (let i = 1; i <= pairs; i++) {
  const [A, B] = [pick('a', i), pick('b', i)];
  for (const k of Object.keys(A)) if (k in B) (rows[k] ??= []).push([A[k], B[k]]);
}
const f = (x) => (x >= 100 ? Math.round(x).toString() : x.toFixed(3));
console.log('| figure | A (each pair) | B (each pair) | B / A, median |');
console.log('|---|---|---|---|');
for (const [k, v] of Object.entries(rows))
  console.log(`| ${k} | ${v.map((p) => f(p[0])).join(', ')} | ${v.map((p) => f(p[1])).join(', ')} | ${median(v.map((p) => p[1] / p[0])).toFixed(2)}× |`);
JS
