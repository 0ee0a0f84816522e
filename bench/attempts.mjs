// 9. What the attempt history costs: the drain of drain.mjs (a backlog
// enqueued while paused into an empty, vacuumed queue, then unpaused and
// delivered to nginx) with outbox.log_attempts = all — every attempt becomes
// a row of outbox.attempts, written by outbox.record() — against none, in
// the same run. Rounds go in pairs whose order alternates (none all, all
// none, ...), so that drift hits both alike; reported are the median rates
// and the median of the per-pair ratios all / none. Every round starts from
// empty events, deliveries and attempts.
import { scale } from './lib/env.mjs';
import { connect, one, resetQueue, setSystem } from './lib/pg.mjs';
import { median } from './lib/stats.mjs';
import { enqueueBacklog, unpauseAndDrain } from './drain.mjs';

const MODES = ['none', 'all'];

async function round(client, mode, n, log, label) {
  await setSystem(client, { 'outbox.paused': 'on', 'outbox.log_attempts': mode });
  await resetQueue(client);
  await client.query('TRUNCATE outbox.attempts');
  await client.query('VACUUM outbox.events, outbox.deliveries, outbox.attempts');
  const shown = await one(client, "SELECT current_setting('outbox.log_attempts') AS m");
  if (shown.m !== mode) throw new Error(`outbox.log_attempts is ${shown.m} after the reload, wanted ${mode}`);
  await enqueueBacklog(client, n, 'bench.attempts');
  await client.query('CHECKPOINT');
  const d = await unpauseAndDrain(client, n, log, label);
  const a = await one(client, `SELECT count(*)::int AS n, pg_total_relation_size('outbox.attempts')::int8 AS bytes
                               FROM outbox.attempts`);
  return {
    mode, perSecond: d.perSecond, seconds: d.seconds, done: d.done, delivered: d.delivered, dead: d.dead,
    pending: d.pending, attemptRows: a.n, attemptBytes: Number(a.bytes),
  };
}

export async function measureAttempts(log) {
  const client = await connect();
  const n = scale.attemptsEvents;
  const pairs = scale.attemptsPairs;
  const rounds = [];
  const ratios = [];
  try {
    for (let p = 0; p < pairs; p++) {
      const order = p % 2 === 0 ? MODES : [...MODES].reverse();
      const pair = {};
      for (const mode of order) {
        log(`attempts: pair ${p + 1}/${pairs}, log_attempts = ${mode}: ${n.toLocaleString('en-US')} events`);
        pair[mode] = await round(client, mode, n, log, `attempts ${mode}`);
        rounds.push(pair[mode]);
      }
      ratios.push(pair.all.perSecond / pair.none.perSecond);
      log(`attempts: pair ${p + 1}: all/none ${ratios.at(-1).toFixed(3)} ` +
          `(${Math.round(pair.all.perSecond)} vs ${Math.round(pair.none.perSecond)} events/s; ` +
          `${pair.all.attemptRows} vs ${pair.none.attemptRows} attempt rows)`);
    }
  } finally {
    await setSystem(client, { 'outbox.log_attempts': null, 'outbox.paused': 'on' }).catch(() => {});
    await client.query('TRUNCATE outbox.attempts').catch(() => {});
    await resetQueue(client).catch(() => {});
    await client.end();
  }
  const of = (mode) => rounds.filter((r) => r.mode === mode);
  const summary = (mode) => ({
    medianPerSecond: median(of(mode).map((r) => r.perSecond)),
    attemptRows: of(mode).map((r) => r.attemptRows),
    attemptBytes: median(of(mode).map((r) => r.attemptBytes)),
    done: of(mode).every((r) => r.done && r.delivered === n),
  });
  return { events: n, pairs, rounds, ratios, ratio: median(ratios), none: summary('none'), all: summary('all') };
}
