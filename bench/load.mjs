// 2b. Keeping up: 16 pgbench clients enqueue at full speed (the enqueue
// benchmark's transaction: a business row + a keyed event) while the worker
// delivers to nginx. Every 250 ms: enqueued (the events' sequence) minus
// delivered (requests nginx answered) = the backlog. After the load stops,
// the time to catch up is measured too.
import path from 'node:path';
import { env, scale } from './lib/env.mjs';
import { connect, one, setSystem, sleep, workerPids } from './lib/pg.mjs';
import { pgbench } from './lib/pgbench.mjs';
import { RssTracker } from './lib/rss.mjs';
import { SinkCounter } from './lib/sink.mjs';

const SAMPLE_MS = 250;
const CLIENTS = 16;

export async function measureLoad(log) {
  const client = await connect();
  const sink = new SinkCounter();
  const out = { clients: CLIENTS, seconds: scale.loadSeconds };
  try {
    await setSystem(client, { 'outbox.paused': 'off' });
    const seq = (await one(client, "SELECT pg_get_serial_sequence('outbox.events', 'seq') AS s")).s;
    const enqueuedSoFar = async () =>
      Number((await one(client, `SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END AS v FROM ${seq}`)).v);
    const mem = new RssTracker(await workerPids(client));
    const base = await enqueuedSoFar();
    await sink.reset();
    const start = performance.now();
    log(`load: ${CLIENTS} clients enqueueing for ${scale.loadSeconds} s while delivering`);
    let loadEnded = null;
    const bench = pgbench({
      script: path.join(env.benchDir, 'sql', 'enqueue-outbox.sql'), clients: CLIENTS, seconds: scale.loadSeconds,
    }).then((r) => { loadEnded = (performance.now() - start) / 1000; return r; },
            (e) => { loadEnded = (performance.now() - start) / 1000; throw e; });
    bench.catch(() => {});
    const samples = [];
    const deadline = start + (scale.loadSeconds + scale.loadCatchUpS) * 1000;
    let atLoadEnd = null;
    let caughtUp = null;
    while (performance.now() < deadline) {
      await sleep(SAMPLE_MS);
      const enqueued = (await enqueuedSoFar()) - base;
      const delivered = await sink.count();
      const ts = (performance.now() - start) / 1000;
      mem.sample();
      samples.push([ts, enqueued, delivered, Math.max(0, enqueued - delivered)]);
      if (loadEnded !== null && atLoadEnd === null) atLoadEnd = samples.at(-1);
      if (loadEnded !== null && delivered >= enqueued) {
        // Confirm with the queue itself.
        const pending = (await one(client, "SELECT count(*)::int AS n FROM outbox.deliveries WHERE state = 'pending'")).n;
        if (pending === 0) { caughtUp = ts; break; }
      }
    }
    const r = await bench;
    out.producerTps = r.tps;
    out.samples = samples;
    out.maxBacklog = Math.max(...samples.map((s) => s[3]));
    const during = samples.filter((s) => s[0] <= (loadEnded ?? Infinity));
    out.maxBacklogDuringLoad = Math.max(0, ...during.map((s) => s[3]));
    out.backlogAtLoadEnd = atLoadEnd ? atLoadEnd[3] : NaN;
    out.enqueued = samples.at(-1)[1];
    out.deliveredAtLoadEnd = atLoadEnd ? atLoadEnd[2] : NaN;
    out.deliveredPerSecondDuringLoad = atLoadEnd ? atLoadEnd[2] / atLoadEnd[0] : NaN;
    out.catchUpSeconds = caughtUp !== null && loadEnded !== null ? caughtUp - loadEnded : NaN;
    out.caughtUp = caughtUp !== null;
    out.rssMaxKiB = mem.max;
    // The exact backlog by the definition in the issue, at the end.
    out.pendingAtEnd = Number((await one(client, `
      SELECT count(*) AS n FROM outbox.events e
      WHERE NOT EXISTS (SELECT 1 FROM outbox.deliveries d WHERE d.event_id = e.id AND d.state <> 'pending')`)).n);
    log(`load: ${Math.round(out.producerTps)} tps enqueued, max backlog ${out.maxBacklog}, ` +
        `${out.caughtUp ? `caught up ${out.catchUpSeconds.toFixed(1)} s after the load` : 'did not catch up'}`);
  } finally {
    await client.end();
  }
  return out;
}
