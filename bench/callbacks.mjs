// 17. What a callback costs (issue 25): the drain of drain.mjs (a backlog
// enqueued while paused into an empty, vacuumed queue, then unpaused and
// delivered to nginx) with a trivial callback named by every event (a
// PL/pgSQL function that counts its call), against the same drain without,
// in the same run. Rounds go in pairs whose order alternates, so that
// drift hits both alike; reported are the median rates and the median of
// the per-pair ratios with / without, and the calls counted (one per
// delivery). Every round starts from empty events and deliveries.
import { scale } from './lib/env.mjs';
import { connect, one, resetQueue, setSystem } from './lib/pg.mjs';
import { median } from './lib/stats.mjs';
import { enqueueBacklog, unpauseAndDrain } from './drain.mjs';

const MODES = ['without', 'with'];

async function round(client, mode, n, log, label) {
  await setSystem(client, { 'outbox.paused': 'on' });
  await resetQueue(client);
  await client.query('TRUNCATE bench_callbacks.calls');
  await client.query('VACUUM outbox.events, outbox.deliveries');
  await enqueueBacklog(client, n, 'bench.callbacks', 0, mode === 'with' ? 'bench_callbacks.noted' : null);
  await client.query('CHECKPOINT');
  const d = await unpauseAndDrain(client, n, log, label);
  const calls = await one(client, 'SELECT coalesce(sum(n), 0)::int AS n FROM bench_callbacks.calls');
  return { mode, perSecond: d.perSecond, seconds: d.seconds, done: d.done, delivered: d.delivered, calls: calls.n };
}

export async function measureCallbacks(log) {
  const client = await connect();
  const n = scale.callbackEvents;
  const pairs = scale.callbackPairs;
  const rounds = [];
  const ratios = [];
  await client.query(`
    DROP SCHEMA IF EXISTS bench_callbacks CASCADE;
    CREATE SCHEMA bench_callbacks;
    CREATE UNLOGGED TABLE bench_callbacks.calls (n int);
    CREATE FUNCTION bench_callbacks.noted(r outbox.delivery_result) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO bench_callbacks.calls VALUES (1);
    END $$;`);
  try {
    for (let p = 0; p < pairs; p++) {
      const order = p % 2 === 0 ? MODES : [...MODES].reverse();
      const pair = {};
      for (const mode of order) {
        log(`callbacks: pair ${p + 1}/${pairs}, ${mode} a callback: ${n.toLocaleString('en-US')} events`);
        pair[mode] = await round(client, mode, n, log, `callbacks ${mode}`);
        rounds.push(pair[mode]);
      }
      ratios.push(pair.with.perSecond / pair.without.perSecond);
      log(`callbacks: pair ${p + 1}: with/without ${ratios.at(-1).toFixed(3)} ` +
          `(${Math.round(pair.with.perSecond)} vs ${Math.round(pair.without.perSecond)} events/s; ` +
          `${pair.with.calls} calls)`);
    }
  } finally {
    await setSystem(client, { 'outbox.paused': 'on' }).catch(() => {});
    await resetQueue(client).catch(() => {});
    await client.query('DROP SCHEMA IF EXISTS bench_callbacks CASCADE').catch(() => {});
    await client.end();
  }
  const of = (mode) => rounds.filter((r) => r.mode === mode);
  const summary = (mode) => ({
    medianPerSecond: median(of(mode).map((r) => r.perSecond)),
    done: of(mode).every((r) => r.done && r.delivered === n),
  });
  return {
    events: n, pairs, rounds, ratios, ratio: median(ratios), with: summary('with'), without: summary('without'),
    calls: of('with').map((r) => r.calls),
  };
}
