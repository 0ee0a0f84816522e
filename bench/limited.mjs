// 10. What a limited endpoint costs the others (issue 14): fan-out with one
// slow, limited endpoint next to a fast one. In the same run, in pairs whose
// order alternates (alone limited, limited alone, ...) so that drift hits
// both alike:
//
//   alone    one fast endpoint ('fast', every topic, the nginx sink, no
//            limits) drains a backlog of n events;
//   limited  the same, with a second endpoint ('limited', every topic, the
//            same nginx, rate_limit => 50, max_in_flight => 2) next to it.
//
// Timed is the fast endpoint's n deliveries only (state = 'delivered' for
// its endpoint_id): n / (its last finished_at − unpause), on the server's
// clock. The limited endpoint's deliveries mostly stay pending, which is the
// point; how many it delivered meanwhile is counted (≈ 50/s × seconds). The
// default endpoint is disabled, as in fanout.mjs; every round starts from an
// empty, vacuumed queue. Also sampled: the workers' CPU time (utime + stime
// from /proc/<pid>/stat) per delivered request, the updates and transactions
// in the bench database, and the workers' states in pg_stat_activity — what
// to look at when the ratio misses (claims of the limited endpoint that
// churn show as updates and CPU per delivery).
import { env, scale } from './lib/env.mjs';
import { connect, one, resetQueue, setSystem, sleep, workerPids } from './lib/pg.mjs';
import { cpuTicks, run } from './lib/proc.mjs';
import { median } from './lib/stats.mjs';
import { SinkCounter } from './lib/sink.mjs';
import { enqueueBacklog } from './drain.mjs';

const FAST = 'fast';
const LIMITED = 'limited';
export const RATE_LIMIT = 50;
export const MAX_IN_FLIGHT = 2;
const VARIANTS = ['alone', 'limited'];
const SAMPLE_MS = 250;
const STALL_S = 60;

async function dbCounters(client) {
  return one(client, `
    SELECT (SELECT n_tup_upd FROM pg_stat_user_tables
            WHERE relid = 'outbox.deliveries'::regclass)::int8 AS updates,
           (SELECT xact_commit + xact_rollback FROM pg_stat_database
            WHERE datname = current_database())::int8 AS xacts`);
}

async function endpointId(client, name) {
  return (await one(client, 'SELECT id FROM outbox.endpoints WHERE name = $1', [name])).id;
}

// One round: the backlog enqueued while paused, then unpaused until the fast
// endpoint has delivered every event (or the deadline), then paused again.
// With predispatch, the deliveries are made while paused by outbox.dispatch()
// (as the worker would), so the timed window holds claims, requests and
// records only: what is left of the difference is the limited endpoint's
// own doing, not the second delivery row per event that fan-out dispatches.
async function round(client, variant, n, clkTck, log, label, predispatch = false) {
  await setSystem(client, { 'outbox.paused': 'on' });
  await client.query('SELECT outbox.drop_endpoint($1)', [LIMITED]).catch(() => {});
  await resetQueue(client);
  await client.query('VACUUM outbox.events, outbox.deliveries');
  if (variant === 'limited') {
    await client.query(`SELECT outbox.create_endpoint($1, $2, '{*}', rate_limit => $3, max_in_flight => $4)`,
                       [LIMITED, `http://127.0.0.1:${env.sinkPort}/${LIMITED}`, RATE_LIMIT, MAX_IN_FLIGHT]);
  }
  const fastId = await endpointId(client, FAST);
  const limitedId = variant === 'limited' ? await endpointId(client, LIMITED) : null;
  await enqueueBacklog(client, n, 'bench.limited');
  if (predispatch) {
    while ((await one(client, 'SELECT outbox.dispatch(10000, false) AS n')).n > 0) { /* next batch */ }
  }
  await client.query('CHECKPOINT');

  const pids = await workerPids(client);
  const sink = new SinkCounter();
  await sink.reset();
  const before = await dbCounters(client);
  const cpu0 = cpuTicks(pids);
  const waits = {};
  const samples = [];
  const t0 = await setSystem(client, { 'outbox.paused': 'off' });
  const start = performance.now();
  const deadline = start + scale.drainDeadlineS * 1000;
  let lastProgress = start;
  let last = 0;
  let done = false;
  log(`${label}: unpaused`);
  while (performance.now() < deadline) {
    await sleep(SAMPLE_MS);
    const requests = await sink.count();
    const ts = (performance.now() - start) / 1000;
    samples.push([ts, requests]);
    const { rows } = await client.query(`SELECT coalesce(wait_event_type || ':' || wait_event, state, '?') AS w
                                         FROM pg_stat_activity WHERE backend_type = 'outbox worker'`);
    for (const r of rows) waits[r.w] = (waits[r.w] ?? 0) + 1;
    if (requests > last) { last = requests; lastProgress = performance.now(); }
    // The fast endpoint is done when none of its deliveries is pending and
    // dispatch has made all n (the sink count says when to start looking).
    if (requests >= n) {
      const r = await one(client, `
        SELECT NOT EXISTS (SELECT 1 FROM outbox.deliveries WHERE endpoint_id = $1 AND state = 'pending') AS idle`,
      [fastId]);
      if (r.idle) {
        const m = await one(client, 'SELECT count(*)::int AS made FROM outbox.deliveries WHERE endpoint_id = $1', [fastId]);
        if (m.made >= n) { done = true; break; }
      }
    }
    if (performance.now() - lastProgress > STALL_S * 1000) {
      log(`${label}: no progress for ${STALL_S} s at ${requests} requests`);
      break;
    }
    if (samples.length % 20 === 0) log(`${label}: ${requests.toLocaleString('en-US')} requests after ${ts.toFixed(1)} s`);
  }
  const cpu1 = cpuTicks(pids);
  const after = await dbCounters(client);
  const httpRequests = await sink.count();
  await setSystem(client, { 'outbox.paused': 'on' });

  const f = await one(client, `
    SELECT count(*) FILTER (WHERE state = 'delivered')::int AS delivered,
           count(*) FILTER (WHERE state = 'pending')::int AS pending,
           count(*) FILTER (WHERE state = 'dead')::int AS dead,
           extract(epoch FROM max(finished_at))::float8 AS last_finished
    FROM outbox.deliveries WHERE endpoint_id = $1`, [fastId]);
  const seconds = f.last_finished - t0;
  const out = {
    variant, predispatch, done, fastDelivered: f.delivered, fastPending: f.pending, fastDead: f.dead, seconds,
    fastPerSecond: f.delivered / seconds, httpRequests,
  };
  if (limitedId !== null) {
    const l = await one(client, `
      SELECT count(*) FILTER (WHERE state = 'delivered' AND finished_at <= to_timestamp($2))::int AS delivered,
             count(*) FILTER (WHERE state = 'delivered')::int AS delivered_total,
             count(*) FILTER (WHERE state = 'pending')::int AS pending,
             count(*) FILTER (WHERE state = 'dead')::int AS dead,
             coalesce(sum(attempts), 0)::int8 AS attempts,
             count(*) FILTER (WHERE state = 'pending' AND attempts > 0)::int AS pending_tried
      FROM outbox.deliveries WHERE endpoint_id = $1`, [limitedId, f.last_finished]);
    Object.assign(out, {
      limitedDelivered: l.delivered, limitedDeliveredTotal: l.delivered_total, limitedPending: l.pending,
      limitedDead: l.dead, limitedAttempts: Number(l.attempts), limitedPendingTried: l.pending_tried,
      limitedPerSecond: l.delivered / seconds,
    });
  }
  const cpuSeconds = pids.reduce((sum, pid) => sum + (cpu1[pid] - cpu0[pid]), 0) / clkTck;
  const requestsServed = out.fastDelivered + (out.limitedDeliveredTotal ?? 0);
  Object.assign(out, {
    workerCpuSeconds: cpuSeconds,
    workerCpuUsPerDelivery: (cpuSeconds * 1e6) / requestsServed,
    workerCpuShare: cpuSeconds / ((performance.now() - start) / 1000),
    deliveryUpdates: Number(after.updates) - Number(before.updates),
    transactions: Number(after.xacts) - Number(before.xacts),
    workerStates: waits,
    samples,
  });
  log(`${label}: fast ${f.delivered} delivered in ${seconds.toFixed(1)} s = ${Math.round(out.fastPerSecond)}/s` +
      (limitedId !== null ? `; limited ${out.limitedDelivered} delivered meanwhile (${out.limitedPerSecond.toFixed(1)}/s)` : '') +
      `; worker CPU ${cpuSeconds.toFixed(1)} s = ${out.workerCpuUsPerDelivery.toFixed(0)} µs/delivery`);
  return out;
}

export async function measureLimited(log) {
  const client = await connect();
  const n = scale.limitedEvents;
  const pairs = scale.limitedPairs;
  const clkTck = Number((await run('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
  const rounds = [];
  const ratios = [];
  let predispatched = null;
  try {
    await setSystem(client, { 'outbox.paused': 'on' });
    await client.query("SELECT outbox.disable_endpoint('default', 'benchmark: limited')");
    await client.query("SELECT outbox.create_endpoint($1, $2, '{*}')", [FAST, `http://127.0.0.1:${env.sinkPort}/${FAST}`]);
    for (let p = 0; p < pairs; p++) {
      const order = p % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
      const pair = {};
      for (const variant of order) {
        const label = `limited: pair ${p + 1}/${pairs}, ${variant === 'alone' ? 'fast alone' : 'fast + limited'}`;
        log(`${label}: ${n.toLocaleString('en-US')} events`);
        pair[variant] = await round(client, variant, n, clkTck, log, label);
        rounds.push(pair[variant]);
      }
      ratios.push(pair.limited.fastPerSecond / pair.alone.fastPerSecond);
      log(`limited: pair ${p + 1}: fast with limited / alone ${ratios.at(-1).toFixed(3)} ` +
          `(${Math.round(pair.limited.fastPerSecond)} vs ${Math.round(pair.alone.fastPerSecond)} deliveries/s)`);
    }
    // Diagnosis: one more pair, its deliveries dispatched before the unpause.
    const pre = {};
    for (const variant of VARIANTS) {
      const label = `limited: dispatched beforehand, ${variant === 'alone' ? 'fast alone' : 'fast + limited'}`;
      log(`${label}: ${n.toLocaleString('en-US')} events`);
      pre[variant] = await round(client, variant, n, clkTck, log, label, true);
    }
    predispatched = { alone: pre.alone, limited: pre.limited,
                      ratio: pre.limited.fastPerSecond / pre.alone.fastPerSecond };
    log(`limited: dispatched beforehand: fast with limited / alone ${predispatched.ratio.toFixed(3)}`);
  } finally {
    await setSystem(client, { 'outbox.paused': 'on' }).catch(() => {});
    for (const name of [LIMITED, FAST]) await client.query('SELECT outbox.drop_endpoint($1)', [name]).catch(() => {});
    await client.query("SELECT outbox.enable_endpoint('default')").catch(() => {});
    await resetQueue(client).catch(() => {});
    await setSystem(client, { 'outbox.paused': 'off' }).catch(() => {});
    await client.end();
  }
  const strip = ({ samples, ...rest }) => rest;
  if (predispatched) predispatched = { ...predispatched, alone: strip(predispatched.alone), limited: strip(predispatched.limited) };
  const of = (variant) => rounds.filter((r) => r.variant === variant);
  const med = (variant, key) => median(of(variant).map((r) => r[key]));
  const summary = (variant) => ({
    medianFastPerSecond: med(variant, 'fastPerSecond'),
    medianSeconds: med(variant, 'seconds'),
    medianCpuUsPerDelivery: med(variant, 'workerCpuUsPerDelivery'),
    medianUpdatesPerDelivery: median(of(variant).map((r) =>
      r.deliveryUpdates / (r.fastDelivered + (r.limitedDeliveredTotal ?? 0)))),
    done: of(variant).every((r) => r.done && r.fastDelivered === n),
  });
  const limited = summary('limited');
  limited.limitedDelivered = of('limited').map((r) => r.limitedDelivered);
  limited.medianLimitedPerSecond = med('limited', 'limitedPerSecond');
  return {
    events: n, pairs, rateLimit: RATE_LIMIT, maxInFlight: MAX_IN_FLIGHT, rounds, ratios, ratio: median(ratios),
    alone: summary('alone'), limited, predispatched,
  };
}
