// 3. Latency, commit to receipt: a producer in this process commits one
// event per transaction (an autocommit statement: its reply arrives after
// COMMIT) and notes performance.now() when the reply arrives; the receiver,
// in the same process and on the same clock, notes when the webhook arrives.
// At a low rate (one every 5 ms, one connection), at 100 events/s (one
// connection) and at 1,000 events/s (8 connections, open loop). Once
// through outbox.enqueue() and the worker, once through a hand-made outbox
// table and the polling relay. First, the CPU of the workers and the
// launcher with nothing to do (issue 23: idle, over a minute).
import path from 'node:path';
import { env, scale, PAYLOAD } from './lib/env.mjs';
import { connect, one, pool, resetQueue, setSystem, sleep, workerPids } from './lib/pg.mjs';
import { enqueueBacklog, unpauseAndDrain } from './drain.mjs';
import { cpuSeconds } from './lib/proc.mjs';
import { start } from './lib/proc.mjs';
import { curve, summarize } from './lib/stats.mjs';
import { startReceiver } from './receiver.mjs';

const LOW_INTERVAL_MS = 5;
const MODERATE_RATE = 100;
const HIGH_RATE = 1000;

const producers = {
  outbox: {
    sql: "SELECT outbox.enqueue('bench.latency', $1::jsonb, key => $2)::text AS id",
  },
  polling: {
    sql: "INSERT INTO plain_outbox (topic, key, payload) VALUES ('bench.latency', $2, $1::jsonb) RETURNING id::text AS id",
  },
};

// Sends count events, event i at t0 + i * intervalMs (as soon as possible
// when behind), through `db` (a client or a pool). Returns id -> commit time.
async function produce(db, system, count, intervalMs, deadlineMs) {
  const commits = new Map();
  const sql = producers[system].sql;
  const t0 = performance.now();
  const inFlight = new Set();
  let errors = 0;
  for (let i = 0; i < count; i++) {
    const due = t0 + i * intervalMs;
    let now = performance.now();
    if (now > t0 + deadlineMs) break;
    if (due > now) { await sleep(Math.max(0, due - now - 0.5)); now = performance.now(); }
    const p = db.query(sql, [PAYLOAD, `order-${i}`]).then(
      (r) => { commits.set(r.rows[0].id, performance.now()); },
      () => { errors++; });
    inFlight.add(p);
    p.finally(() => inFlight.delete(p));
    if (intervalMs >= LOW_INTERVAL_MS) await p;  // low rate: one at a time
    // Bound the queue at the pool when the server cannot keep up.
    while (inFlight.size > 64) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  const seconds = (performance.now() - t0) / 1000;
  return { commits, seconds, errors };
}

async function waitReceived(receiver, ids, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  const missing = () => ids.filter((id) => !receiver.state.receipts.has(id)).length;
  while (performance.now() < deadline && missing() > 0) await sleep(20);
  return missing();
}

async function scenario(receiver, db, system, rateName, count, intervalMs, waitMs) {
  receiver.reset();
  const { commits, seconds, errors } = await produce(db, system, count, intervalMs, count * intervalMs + 30_000);
  const ids = [...commits.keys()];
  const missing = await waitReceived(receiver, ids, waitMs);
  const latencies = [];
  for (const [id, committed] of commits) {
    const received = receiver.state.receipts.get(id);
    if (received !== undefined) latencies.push(received - committed);
  }
  const s = summarize(latencies);
  return {
    system, rate: rateName, sent: commits.size, errors, missing,
    achievedPerSecond: commits.size / seconds,
    duplicates: receiver.state.duplicates, badSignatures: receiver.state.badSignatures,
    unsigned: receiver.state.unsigned,
    ...s, curve: curve(latencies),
  };
}

// Runs a scenario and adds the CPU its workers used (utime + stime from
// /proc, all workers together) per event received.
async function withWorkerCpu(admin, run) {
  const pids = await workerPids(admin);
  const before = cpuSeconds(pids);
  const s = await run();
  const used = cpuSeconds(pids) - before;
  return { ...s, workerCpuMsPerEvent: (used * 1000) / Math.max(1, s.sent - s.missing) };
}

// The CPU of the workers and the launcher over `seconds` with nothing to
// do, after `settleS` for the polls to space out (an idle worker polls
// less and less often, up to outbox.poll_interval).
async function idleCpu(admin, settleS, seconds, log) {
  log(`latency: idle, settling ${settleS} s, then ${seconds} s measured`);
  await sleep(settleS * 1000);
  const { rows } = await admin.query(
    "SELECT pid FROM pg_stat_activity WHERE backend_type IN ('outbox launcher', 'outbox worker')");
  const pids = rows.map((r) => r.pid);
  const before = cpuSeconds(pids);
  await sleep(seconds * 1000);
  const cpuMs = (cpuSeconds(pids) - before) * 1000;
  return { processes: pids.length, seconds, cpuMs, coreShare: cpuMs / (seconds * 1000) };
}

// A changed outbox.url reaches the workers with the postmaster's SIGHUP, a
// moment after pg_reload_conf() returns: an event committed in that moment
// goes to the old URL (delivered there, not lost). Probe until one arrives.
async function untilReceiving(receiver, db, system) {
  for (let i = 0; i < 50; i++) {
    receiver.reset();
    const { commits } = await produce(db, system, 1, 0, 10_000);
    if (await waitReceived(receiver, [...commits.keys()], 200) === 0) return;
  }
  throw new Error(`${system}: no probe event arrived at the receiver in 50 tries`);
}

async function warmUp(receiver, db, system) {
  if (system === 'outbox') await untilReceiving(receiver, db, system);
  receiver.reset();
  const { commits } = await produce(db, system, 20, 20, 10_000);
  const missing = await waitReceived(receiver, [...commits.keys()], 15_000);
  if (missing > 0) throw new Error(`${system}: ${missing} of 20 warm-up events never arrived at the receiver`);
}

export async function measureLatency(log) {
  const receiver = await startReceiver();
  const admin = await connect();
  const single = await connect();
  const many = pool('bench', 8);
  const hookUrl = `http://127.0.0.1:${receiver.port}/hook`;
  const lowCount = scale.latencyLowCount;
  const highCount = scale.latencyHighSeconds * HIGH_RATE;
  const moderateCount = scale.latencyHighSeconds * MODERATE_RATE;
  const out = { lowIntervalMs: LOW_INTERVAL_MS, moderateRate: MODERATE_RATE, highRate: HIGH_RATE, scenarios: [] };
  let relay = null;
  try {
    await setSystem(admin, { 'outbox.url': hookUrl, 'outbox.paused': 'off' });
    await admin.query('TRUNCATE plain_outbox');
    await warmUp(receiver, single, 'outbox');
    out.idle = await idleCpu(admin, scale.idleSettleS, scale.idleSeconds, log);
    log(`latency: outbox, one event every ${LOW_INTERVAL_MS} ms (${lowCount})`);
    out.scenarios.push(await scenario(receiver, single, 'outbox', 'low', lowCount, LOW_INTERVAL_MS, 10_000));
    log(`latency: outbox, ${MODERATE_RATE}/s for ${scale.latencyHighSeconds} s`);
    out.scenarios.push(await withWorkerCpu(admin, () =>
      scenario(receiver, single, 'outbox', 'moderate', moderateCount, 1000 / MODERATE_RATE, 15_000)));
    log(`latency: outbox, ${HIGH_RATE}/s for ${scale.latencyHighSeconds} s`);
    out.scenarios.push(await withWorkerCpu(admin, () =>
      scenario(receiver, many, 'outbox', 'high', highCount, 1000 / HIGH_RATE, 15_000)));

    // The same right after a large drain, as after a burst in production:
    // the tables hold the drained deliveries (retention) and autovacuum has
    // them to work through.
    const n = scale.latencyDrainEvents;
    log(`latency: a drain of ${n.toLocaleString('en-US')} events first`);
    await setSystem(admin, { 'outbox.paused': 'on', 'outbox.url': `http://127.0.0.1:${env.sinkPort}/hook` });
    await resetQueue(admin);
    await enqueueBacklog(admin, n, 'bench.before_latency');
    await unpauseAndDrain(admin, n, log, 'drain before latency');
    await setSystem(admin, { 'outbox.url': hookUrl });
    await warmUp(receiver, single, 'outbox');
    log(`latency: outbox after the drain, one event every ${LOW_INTERVAL_MS} ms (${lowCount})`);
    out.scenarios.push({ ...await scenario(receiver, single, 'outbox', 'low', lowCount, LOW_INTERVAL_MS, 10_000),
                         afterDrain: n });
    log(`latency: outbox after the drain, ${HIGH_RATE}/s for ${scale.latencyHighSeconds} s`);
    out.scenarios.push({ ...await withWorkerCpu(admin, () =>
      scenario(receiver, many, 'outbox', 'high', highCount, 1000 / HIGH_RATE, 15_000)), afterDrain: n });
    await setSystem(admin, { 'outbox.url': `http://127.0.0.1:${env.sinkPort}/hook` });

    relay = start(process.execPath, [path.join(env.benchDir, 'polling-relay.mjs')], {
      env: { RELAY_URL: hookUrl, PGHOST: env.pghost, PGPORT: String(env.pgport), PGDATABASE: 'bench',
             PGUSER: 'postgres', RELAY_MAX_SECONDS: '1800' },
      maxMs: 1_800_000,
    });
    await warmUp(receiver, single, 'polling');
    log(`latency: polling relay, one event every ${LOW_INTERVAL_MS} ms (${lowCount})`);
    out.scenarios.push(await scenario(receiver, single, 'polling', 'low', lowCount, LOW_INTERVAL_MS, 30_000));
    log(`latency: polling relay, ${HIGH_RATE}/s for ${scale.latencyHighSeconds} s`);
    out.scenarios.push(await scenario(receiver, many, 'polling', 'high', highCount, 1000 / HIGH_RATE, 60_000));
  } finally {
    if (relay) {
      const r = await relay.stop();
      if (r.code && r.code !== 0) log(`polling relay exited with ${r.code}: ${relay.stderr()}`);
    }
    await setSystem(admin, { 'outbox.url': `http://127.0.0.1:${env.sinkPort}/hook` }).catch(() => {});
    await many.end();
    await single.end();
    await admin.end();
    await receiver.close();
  }
  log(`  idle: ${out.idle.cpuMs} ms of CPU in ${out.idle.seconds} s (${out.idle.processes} processes)`);
  for (const s of out.scenarios) {
    log(`  ${s.system} ${s.rate}: p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms, max ${s.max.toFixed(1)} ms ` +
        `(${s.sent} sent at ${Math.round(s.achievedPerSecond)}/s, ${s.missing} missing)`);
  }
  return out;
}
