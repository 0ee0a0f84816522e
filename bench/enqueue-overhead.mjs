// 1. Enqueue overhead: pgbench, a business row + an event per transaction,
// through outbox.enqueue() versus a hand-made outbox table, and enqueue()
// with outbox.notify_on_enqueue = on. Delivery is paused, so the figure is
// the cost of enqueue itself. Every run starts from empty, vacuumed tables
// and a fresh checkpoint.
//
// Commit latency on this machine's disk drifts by ±15 % within seconds, far
// more than enqueue() costs, so the measurement is built to cancel drift:
// many short rounds, each running enqueue() and the hand-made table back to
// back (which goes first alternates), the median of the per-round ratios.
// A cross-check mixes both transactions at random in one pgbench run, where
// the drift hits both alike: the ratio of their average latencies.
import path from 'node:path';
import { env, scale } from './lib/env.mjs';
import { connect, setSystem } from './lib/pg.mjs';
import { pgbench } from './lib/pgbench.mjs';
import { median } from './lib/stats.mjs';

const variants = {
  outbox: { script: 'enqueue-outbox.sql' },
  plain: { script: 'enqueue-plain.sql' },
  notify: { script: 'enqueue-outbox.sql', pgoptions: '-c outbox.notify_on_enqueue=on' },
  pgq: { script: 'enqueue-pgq.sql' },
};

// PgQ, when the server has it (postgresql-NN-pgq3): its queue made once.
async function setUpPgq(client) {
  const { rows } = await client.query("SELECT count(*)::int AS n FROM pg_available_extensions WHERE name = 'pgq'");
  if (rows[0].n === 0) return false;
  await client.query('CREATE EXTENSION IF NOT EXISTS pgq');
  await client.query("SELECT pgq.create_queue('bench_orders')");
  return true;
}

async function reset(client, pgq) {
  // Worker 0 prunes even while paused, locking deliveries before events:
  // a TRUNCATE that meets it can be the deadlock's victim; it is run again.
  for (let attempt = 1; ; attempt++) {
    try {
      await client.query('TRUNCATE orders, plain_outbox, outbox.events, outbox.deliveries');
      break;
    } catch (e) {
      if (e.code !== '40P01' || attempt >= 5) throw e;
    }
  }
  if (pgq) await client.query('TRUNCATE pgq.event_template');
  await client.query('VACUUM ANALYZE orders, plain_outbox, outbox.events, outbox.deliveries');
  await client.query('CHECKPOINT');
}

// The notify variant measures something only if enqueue() then really
// NOTIFYs: listen on the worker's channel and enqueue one event.
async function notifies() {
  const listener = await connect();
  const producer = await connect();
  try {
    const channel = (await listener.query("SELECT current_setting('outbox.channel') AS c")).rows[0].c;
    let heard = false;
    listener.on('notification', (n) => { if (n.channel === channel) heard = true; });
    await listener.query(`LISTEN "${channel}"`);
    await producer.query('SET outbox.notify_on_enqueue = on');
    await producer.query("SELECT outbox.enqueue('bench.notify', '{}')");
    for (let i = 0; i < 40 && !heard; i++) await new Promise((r) => setTimeout(r, 50));
    return heard;
  } finally {
    await listener.end();
    await producer.end();
  }
}

export async function measureEnqueueOverhead(log) {
  const client = await connect();
  const out = {};
  try {
    await setSystem(client, { 'outbox.paused': 'on' });
    const pgq = await setUpPgq(client);
    out.pgqAvailable = pgq;
    for (const clients of [16, 1]) {
      const tps = { outbox: [], plain: [], notify: [], ...(pgq ? { pgq: [] } : {}) };
      for (let round = 0; round < scale.enqueueRounds; round++) {
        const order = [...(round % 2 === 0 ? ['outbox', 'plain', 'notify'] : ['plain', 'outbox', 'notify']),
                       ...(pgq ? ['pgq'] : [])];
        for (const name of order) {
          await reset(client, pgq);
          const v = variants[name];
          const r = await pgbench({
            script: path.join(env.benchDir, 'sql', v.script), clients, seconds: scale.enqueueSeconds,
            pgoptions: v.pgoptions,
          });
          tps[name].push(r.tps);
        }
        log(`enqueue, ${clients} client(s), round ${round + 1}/${scale.enqueueRounds}: ` +
            Object.entries(tps).map(([k, v]) => `${k} ${Math.round(v.at(-1))}`).join(', ') + ' tps');
      }
      await reset(client, pgq);
      const mixed = await pgbench({
        scripts: ['enqueue-outbox.sql', 'enqueue-plain.sql'].map((f) => path.join(env.benchDir, 'sql', f)),
        clients, seconds: scale.enqueueSeconds * 5,
      });
      const [outboxMs, plainMs] = mixed.scriptLatencyMs;
      log(`enqueue, ${clients} client(s), mixed in one run: outbox ${outboxMs} ms, plain ${plainMs} ms per transaction`);
      // Ratios are paired by round (each round's variants ran back to back)
      // and the median of those is reported: drifting noise from other load
      // on the machine cancels out better than in a ratio of medians.
      const m = Object.fromEntries(Object.entries(tps).map(([k, v]) => [k, median(v)]));
      const paired = (name) => median(tps[name].map((t, i) => t / tps.plain[i]));
      out[clients] = {
        tps, median: m,
        ratios: tps.outbox.map((t, i) => t / tps.plain[i]),
        ratio: paired('outbox'),
        notifyRatio: paired('notify'),
        // enqueue() against pgq.insert_event, paired by round as above.
        ...(pgq ? { pgqRatio: median(tps.outbox.map((t, i) => t / tps.pgq[i])), pgqRatios: tps.outbox.map((t, i) => t / tps.pgq[i]) } : {}),
        mixed: { outboxMs, plainMs, ratio: plainMs / outboxMs },
      };
    }
    out.notifyVerified = await notifies();
    await reset(client, pgq);
  } finally {
    await client.end();
  }
  return out;
}
