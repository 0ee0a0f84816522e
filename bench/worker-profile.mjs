// The workers' CPU per event at a steady rate, and where it goes: a
// throwaway cluster (test/lib/cluster.mjs, the installed extension, the
// default two workers), the latency receiver of bench/receiver.mjs, and a
// producer committing one keyed event per transaction at RATE events/s
// from 8 connections for SECONDS. After a 3 s warm-up it counts the
// workers' CPU (utime + stime), the events received and the transactions
// the workers committed (the database's commits minus the producer's), and
// with PERF=file it records the workers with `perf record` meanwhile.
//
//   node bench/worker-profile.mjs                       # 1,000 events/s for 20 s
//   RATE=100 SECONDS=30 node bench/worker-profile.mjs
//   PERF=/tmp/worker.perf node bench/worker-profile.mjs && perf report -i /tmp/worker.perf --children
//   CONF='{"synchronous_commit": "off"}' node bench/worker-profile.mjs
//
// Not a row of bench/run.sh: a tool for finding what a change does to the
// worker's cost (docs/performance-round-three.md used it). Run it as root,
// with the pg_config of the installation to measure first on PATH.
import { spawn } from 'node:child_process';
import pg from 'pg';

import { startCluster } from '../test/lib/cluster.mjs';
import { cpuSeconds } from './lib/proc.mjs';
import { SECRET, startReceiver } from './receiver.mjs';

const RATE = Number(process.env.RATE || 1000);
const SECONDS = Number(process.env.SECONDS || 20);
const WARM_UP_MS = 3000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const receiver = await startReceiver();
const cluster = await startCluster({
  conf: {
    'outbox.url': `http://127.0.0.1:${receiver.port}/hook`,
    'outbox.secret': SECRET,
    'outbox.workers': 2,
    'outbox.poll_interval': '1s',
    ...JSON.parse(process.env.CONF || '{}'),
  },
});
const config = { host: cluster.dir, port: cluster.port, database: cluster.database, user: 'postgres' };
const producers = new pg.Pool({ ...config, max: 8 });
const admin = new pg.Client(config);
await admin.connect();
const commits = async () => Number((await admin.query(
  'SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()')).rows[0].xact_commit);

await sleep(2000);
const pids = await cluster.workerPids();
let sent = 0;
let start;  // the figures when the warm-up ended
let perf;
const inFlight = new Set();
const t0 = performance.now();
for (let i = 0; performance.now() - t0 < SECONDS * 1000; i++) {
  const wait = t0 + (i * 1000) / RATE - performance.now();
  if (wait > 0) await sleep(Math.max(0, wait - 0.5));
  if (!start && performance.now() - t0 > WARM_UP_MS) {
    start = { cpu: cpuSeconds(pids), received: receiver.state.requests, sent, commits: await commits(),
              at: performance.now() };
    if (process.env.PERF) {
      perf = spawn('perf', ['record', '-F', '499', '--call-graph', 'dwarf,16384', '-o', process.env.PERF,
                            '-p', pids.join(','), '--', 'sleep', String(SECONDS - WARM_UP_MS / 1000 - 1)],
                   { stdio: 'inherit' });
    }
  }
  const p = producers.query("SELECT outbox.enqueue('bench.profile', '{\"n\": 1}'::jsonb, key => $1)", [`order-${i}`])
    .then(() => { sent++; });
  inFlight.add(p);
  p.finally(() => inFlight.delete(p));
  while (inFlight.size > 64) await Promise.race(inFlight);
}
await Promise.all(inFlight);
const seconds = (performance.now() - start.at) / 1000;
const cpu = cpuSeconds(pids) - start.cpu;
const received = receiver.state.requests - start.received;
await sleep(600);  // the statistics of the last transactions are reported
const transactions = (await commits()) - start.commits - (sent - start.sent);
console.log(`${RATE} events/s asked, ${Math.round((sent - start.sent) / seconds)}/s sent; over ${seconds.toFixed(1)} s ` +
            `${received} received, worker CPU ${cpu.toFixed(2)} s = ${((cpu * 1000) / received).toFixed(3)} ms per event; ` +
            `about ${transactions} worker transactions (${(received / transactions).toFixed(1)} events each)`);
if (perf) await new Promise((resolve) => perf.on('exit', resolve));
await admin.end();
await producers.end();
await cluster.destroy();
await receiver.close();
