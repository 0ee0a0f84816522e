// 8. Reading outbox.stats: how long `SELECT * FROM outbox.stats` takes with
// 1,000 and with 1,000,000 (100,000 with --quick) pending deliveries. The
// backlog is made as claim-cost.mjs makes it — the real enqueue(), then
// dispatch() in the worker's batch size — in the bench database with
// outbox.paused = on, so that nothing drains. Autovacuum is off for
// outbox.deliveries meanwhile, so that "fresh" really is a table no VACUUM
// has seen (no visibility map: an index-only scan has to visit the heap).
//
// Per size: the first read (it sets the hint bits of the new rows), two
// warm-up reads, then `reads` timed reads (client side, round trip
// included); then VACUUM ANALYZE outbox.deliveries and the same again. One
// EXPLAIN (ANALYZE, BUFFERS) per state records the plan's shape, how many
// heap pages it touched and how long JIT compilation took; the vacuumed
// reads are repeated with jit = off to show JIT's share.
import { scale, PAYLOAD } from './lib/env.mjs';
import { connect, dispatchAll, one, resetQueue, setSystem } from './lib/pg.mjs';
import { median } from './lib/stats.mjs';

const READS = 20;
const WARMUP = 2;
const QUERY = 'SELECT * FROM outbox.stats';

async function build(client, n) {
  await resetQueue(client);
  await client.query(`SELECT count(outbox.enqueue('bench.stats', $1::jsonb)) FROM generate_series(1, $2::int)`,
                     [PAYLOAD, n]);
  // (The paused worker may dispatch some too: dispatch_state serializes.)
  await dispatchAll(client);
  const r = await one(client, "SELECT count(*)::int AS n FROM outbox.deliveries WHERE state = 'pending'");
  if (r.n !== n) throw new Error(`stats setup made ${r.n} pending deliveries, wanted ${n}`);
}

async function timedRead(client) {
  const t = performance.now();
  const { rows } = await client.query(QUERY);
  return { ms: performance.now() - t, rows };
}

// The plan's total time, the heap fetches of its index-only scans and the
// buffers it touched, from one EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON).
async function explain(client) {
  const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${QUERY}`);
  const plan = rows[0]['QUERY PLAN'][0];
  const scans = [];
  const walk = (node) => {
    if (/Scan/.test(node['Node Type']) && node['Relation Name'] === 'deliveries') {
      scans.push({ type: node['Node Type'], index: node['Index Name'] ?? null,
                   heapFetches: node['Heap Fetches'] ?? null, rows: node['Actual Rows'],
                   loops: node['Actual Loops'] });
    }
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(plan.Plan);
  return {
    executionMs: plan['Execution Time'], planningMs: plan['Planning Time'], scans,
    jitMs: plan.JIT?.Timing?.Total ?? (Number.isFinite(plan.JIT?.Timing) ? plan.JIT.Timing : 0),
    sharedHit: plan.Plan['Shared Hit Blocks'], sharedRead: plan.Plan['Shared Read Blocks'],
  };
}

async function readSeries(client, n, label, log) {
  const first = await timedRead(client);
  for (let i = 0; i < WARMUP; i++) await timedRead(client);
  const ms = [];
  let pending = null;
  for (let i = 0; i < READS; i++) {
    const r = await timedRead(client);
    ms.push(r.ms);
    pending = r.rows.find((row) => row.endpoint === 'default')?.pending;
  }
  if (Number(pending) !== n) throw new Error(`outbox.stats says ${pending} pending on 'default', wanted ${n}`);
  const plan = await explain(client);
  const out = { firstMs: first.ms, medianMs: median(ms), maxMs: Math.max(...ms), ms, plan };
  log(`  ${n.toLocaleString('en-US')} pending, ${label}: first ${out.firstMs.toFixed(2)} ms, ` +
      `median ${out.medianMs.toFixed(2)} ms, max ${out.maxMs.toFixed(2)} ms; ` +
      `heap fetches ${plan.scans.map((s) => s.heapFetches ?? '-').join('/')}, JIT ${plan.jitMs.toFixed(1)} ms`);
  return out;
}

export async function measureStats(log) {
  const client = await connect();
  const sizes = [1000, scale.statsPending];
  const out = { sizes, reads: READS, cases: {} };
  try {
    await setSystem(client, { 'outbox.paused': 'on' });
    await client.query('ALTER TABLE outbox.deliveries SET (autovacuum_enabled = off)');
    for (const n of sizes) {
      log(`stats: building ${n.toLocaleString('en-US')} pending deliveries (paused, autovacuum off)`);
      const t = Date.now();
      await build(client, n);
      const c = { buildSeconds: (Date.now() - t) / 1000 };
      c.fresh = await readSeries(client, n, 'fresh', log);
      await client.query('VACUUM (ANALYZE) outbox.deliveries');
      c.vacuumed = await readSeries(client, n, 'after VACUUM ANALYZE', log);
      // What of that is JIT compilation: the planner, which takes the
      // never-analyzed outbox.endpoints for 330 rows, may cost the view
      // above jit_above_cost. The same reads with jit = off.
      await client.query('SET jit = off');
      c.noJit = await readSeries(client, n, 'after VACUUM ANALYZE, jit = off', log);
      await client.query('RESET jit');
      out.cases[n] = c;
    }
  } finally {
    await client.query('ALTER TABLE outbox.deliveries RESET (autovacuum_enabled)').catch(() => {});
    await resetQueue(client).catch(() => {});
    await client.query('VACUUM outbox.events, outbox.deliveries').catch(() => {});
    await client.end();
  }
  return out;
}
