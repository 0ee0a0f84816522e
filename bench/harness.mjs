// Runs every measurement of issue 6 in one go, on the cluster and the nginx
// that bench/run.sh started, then prints the table, writes
// results/latest.json and draws the charts. Started by bench/run.sh only.
//
// BENCH_ONLY=enqueue,claim,... runs a subset (names below); prune needs drain.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { env } from './lib/env.mjs';
import { connect } from './lib/pg.mjs';
import { run } from './lib/proc.mjs';
import { measureSinkBaseline } from './sink-baseline.mjs';
import { measureMicro } from './micro.mjs';
import { measureEnqueueOverhead } from './enqueue-overhead.mjs';
import { measureClaimCost } from './claim-cost.mjs';
import { measureStats } from './stats.mjs';
import { measureDrain, measureMixDrain } from './drain.mjs';
import { measurePrune } from './prune.mjs';
import { measureFanout } from './fanout.mjs';
import { measureAttempts } from './attempts.mjs';
import { measureCallbacks } from './callbacks.mjs';
import { measureLimited } from './limited.mjs';
import { measureHotKey } from './hotkey.mjs';
import { measureTls } from './tls.mjs';
import { measureBrokers } from './brokers.mjs';
import { measureHostile } from './hostile.mjs';
import { measurePgNet } from './pgnet.mjs';
import { measureLoad } from './load.mjs';
import { measurePollingDrain } from './polling-drain.mjs';
import { measureLatency } from './latency.mjs';
import { measureDatabases } from './databases.mjs';
import { buildRows, printTable } from './report.mjs';
import { drawCharts } from './charts.mjs';

const started = Date.now();
function log(message) {
  const s = Math.round((Date.now() - started) / 1000);
  process.stdout.write(`[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}] ${message}\n`);
}

const phases = [
  ['sink', measureSinkBaseline],
  ['micro', measureMicro],
  ['enqueue', measureEnqueueOverhead],
  ['claim', measureClaimCost],
  ['stats', measureStats],
  ['drain', measureDrain],
  ['mix', measureMixDrain],
  ['prune', measurePrune],
  ['fanout', measureFanout],
  ['attempts', measureAttempts],
  ['callbacks', measureCallbacks],
  ['limited', measureLimited],
  ['keyed', measureHotKey],
  ['tls', measureTls],
  ['brokers', measureBrokers],
  ['hostile', measureHostile],
  ['pgNet', measurePgNet],
  ['load', measureLoad],
  ['pollingDrain', measurePollingDrain],
  ['latency', measureLatency],
  ['databases', measureDatabases],
];
const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null;

async function describeMachine() {
  const client = await connect();
  try {
    const { rows } = await client.query(`SELECT version() AS pg,
      (SELECT extversion FROM pg_extension WHERE extname = 'outbox') AS outbox`);
    const git = await run('git', ['-C', env.root, 'describe', '--always', '--dirty'], { allowFailure: true });
    return {
      cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      kernel: os.release(), load: os.loadavg(), postgres: rows[0].pg, outbox: rows[0].outbox,
      commit: git.stdout.trim(), node: process.version,
    };
  } finally {
    await client.end();
  }
}

async function setUpSchema() {
  const client = await connect();
  try {
    await client.query(fs.readFileSync(path.join(env.benchDir, 'sql/schema.sql'), 'utf8'));
  } finally {
    await client.end();
  }
}

const results = { mode: env.mode, startedAt: new Date(started).toISOString(), errors: {} };
let exitCode = 0;
try {
  results.machine = await describeMachine();
  await setUpSchema();
  log(`mode ${env.mode}: ${results.machine.cpus} CPUs, ${results.machine.postgres.split(' on ')[0]}, ` +
      `outbox ${results.machine.outbox} at ${results.machine.commit}`);
  for (const [name, measure] of phases) {
    if (only && !only.has(name)) continue;
    if (name === 'prune' && !results.drain) continue;
    log(`== ${name}`);
    try {
      results[name] = await measure(log);
    } catch (err) {
      results.errors[name] = err.message.split('\n')[0];
      log(`${name} FAILED: ${err.stack}`);
      exitCode = 1;
    }
  }
} catch (err) {
  log(`harness failed: ${err.stack}`);
  exitCode = 1;
}
results.seconds = (Date.now() - started) / 1000;

const rows = buildRows(results);
fs.mkdirSync(env.results, { recursive: true });
try {
  results.charts = await drawCharts(results, env.results);
} catch (err) {
  results.errors.charts = err.message.split('\n')[0];
  log(`charts FAILED: ${err.message}`);
  exitCode = 1;
}
fs.writeFileSync(path.join(env.results, 'latest.json'), JSON.stringify({ rows, results }, null, 2) + '\n');

process.stdout.write(`\noutbox benchmarks, mode ${env.mode}, ${results.machine?.cpus ?? '?'} CPUs, ` +
                     `${Math.round(results.seconds)} s, commit ${results.machine?.commit ?? '?'}\n\n`);
printTable(rows);
const missed = rows.filter((r) => r.result === 'MISS').length;
const passed = rows.filter((r) => r.result === 'PASS').length;
process.stdout.write(`\n${passed} targets met, ${missed} missed; ` +
                     `results: ${path.relative(process.cwd(), path.join(env.results, 'latest.json'))}` +
                     (results.charts?.length ? `, charts: ${results.charts.join(', ')}` : '') + '\n');
process.exit(exitCode);
