// 2. Drain throughput: a backlog enqueued while delivery is paused, then
// unpaused and delivered to the nginx sink. Progress (requests nginx
// answered) and the worker's memory are sampled every 250 ms; the rate is
// taken from the server's own clock: deliveries / (last finished_at −
// unpause). The queue starts empty and vacuumed, as a pruned outbox is.
import { scale, PAYLOAD } from './lib/env.mjs';
import { connect, one, resetQueue, setSystem, sleep, tableSizes, workerPids } from './lib/pg.mjs';
import { RssTracker } from './lib/rss.mjs';
import { SinkCounter } from './lib/sink.mjs';

const SAMPLE_MS = 250;
const STALL_S = 60;

// Enqueues n events, 100 per transaction, while delivery is paused; with
// `keys`, event i gets the key 'k-' || (i % keys).
export async function enqueueBacklog(client, n, topic = 'bench.drain', keys = 0, onResult = null) {
  const perTxn = 100;
  const key = keys > 0 ? `'k-' || ((i * ${perTxn} + g) % ${keys})` : 'NULL';
  const callback = onResult ? `, on_result => '${onResult}'` : '';
  await client.query(`DO $$
    BEGIN
      FOR i IN 0..${Math.ceil(n / perTxn) - 1} LOOP
        PERFORM outbox.enqueue('${topic}', '${PAYLOAD}'::jsonb, key => ${key}${callback})
        FROM generate_series(1, least(${perTxn}, ${n} - i * ${perTxn})) AS g;
        COMMIT;
      END LOOP;
    END $$`);
}

async function drainDone(client, deliveries) {
  const r = await one(client, `SELECT NOT EXISTS (SELECT 1 FROM outbox.deliveries WHERE state = 'pending') AS idle,
                                      (SELECT count(*) FROM outbox.deliveries)::int AS made`);
  return r.idle && r.made >= deliveries;
}

// Unpauses and waits (bounded) until `deliveries` deliveries are finished;
// returns the rate, counts and samples [s, delivered, VmRSS MiB, RssAnon MiB].
export async function unpauseAndDrain(client, deliveries, log, label) {
  const sink = new SinkCounter();
  const mem = new RssTracker(await workerPids(client));
  await sink.reset();
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
    const delivered = await sink.count();
    const m = mem.sample();
    const ts = (performance.now() - start) / 1000;
    samples.push([ts, delivered, m.vmRss / 1024, m.rssAnon / 1024]);
    if (delivered > last) { last = delivered; lastProgress = performance.now(); }
    if ((delivered >= deliveries || samples.length % 8 === 0) && await drainDone(client, deliveries)) {
      done = true;
      break;
    }
    if (performance.now() - lastProgress > STALL_S * 1000) {
      log(`${label}: no progress for ${STALL_S} s at ${delivered} delivered`);
      break;
    }
    if (samples.length % 20 === 0) log(`${label}: ${delivered.toLocaleString('en-US')} delivered after ${ts.toFixed(1)} s`);
  }
  const r = await one(client, `
    SELECT count(*) FILTER (WHERE state = 'delivered')::int AS delivered,
           count(*) FILTER (WHERE state = 'dead')::int AS dead,
           count(*) FILTER (WHERE state = 'pending')::int AS pending,
           max(attempts)::int AS max_attempts,
           extract(epoch FROM max(finished_at))::float8 AS last_finished
    FROM outbox.deliveries`);
  const out = {
    deliveries, done, delivered: r.delivered, dead: r.dead, pending: r.pending, maxAttempts: r.max_attempts,
    httpRequests: await sink.count(), seconds: r.last_finished - t0,
  };
  out.perSecond = r.delivered / out.seconds;
  // Sustained: between 10 % and 90 % of the backlog, from the samples.
  const at = (fraction) => samples.find((s) => s[1] >= fraction * deliveries)?.[0];
  const t10 = at(0.1);
  const t90 = at(0.9);
  out.sustainedPerSecond = t10 !== undefined && t90 !== undefined && t90 > t10 ? (0.8 * deliveries) / (t90 - t10) : NaN;
  out.rssMaxKiB = mem.max;
  out.rssSamples = mem.samples;
  out.samples = samples;
  log(`${label}: ${r.delivered} delivered in ${out.seconds.toFixed(1)} s = ${Math.round(out.perSecond)}/s`);
  return out;
}

export async function measureDrain(log) {
  const client = await connect();
  const n = scale.drainEvents;
  const sizes = {};
  try {
    await setSystem(client, { 'outbox.paused': 'on' });
    await resetQueue(client);
    await client.query('VACUUM outbox.events, outbox.deliveries');
    sizes.start = await tableSizes(client);
    log(`drain: enqueueing ${n.toLocaleString('en-US')} events while paused`);
    const t = Date.now();
    await enqueueBacklog(client, n);
    const enqueueSeconds = (Date.now() - t) / 1000;
    await client.query('CHECKPOINT');
    sizes.backlog = await tableSizes(client);
    const out = await unpauseAndDrain(client, n, log, 'drain');
    sizes.drained = await tableSizes(client);
    return { events: n, enqueueSeconds, ...out, eventsPerSecond: out.perSecond, sizes };
  } finally {
    await client.end();
  }
}

// The mix applications really send (issue 23): events with distinct keys
// (as pgbench's order ids give) and unkeyed ones, drained right after they
// were enqueued (no VACUUM or CHECKPOINT between), as after a load phase.
export async function measureMixDrain(log) {
  const client = await connect();
  const [keyed, unkeyed] = scale.mixDrain;
  try {
    await setSystem(client, { 'outbox.paused': 'on' });
    await resetQueue(client);
    log(`mix: enqueueing ${keyed.toLocaleString('en-US')} events with distinct keys and ` +
        `${unkeyed.toLocaleString('en-US')} without, while paused`);
    await enqueueBacklog(client, keyed, 'bench.mix', keyed);
    await enqueueBacklog(client, unkeyed, 'bench.mix');
    const out = await unpauseAndDrain(client, keyed + unkeyed, log, 'mix');
    return { keyed, unkeyed, events: keyed + unkeyed, ...out, eventsPerSecond: out.perSecond };
  } finally {
    await client.end();
  }
}
