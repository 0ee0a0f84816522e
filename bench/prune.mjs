// 5. Bloat: after the drain, outbox.retention = '1s' and the worker's own
// pruning (every 10 s, in small batches) removes what was delivered; then a
// plain VACUUM, as autovacuum would run it. Table and index sizes are taken
// before the backlog, with it, after the drain (by drain.mjs) and here.
import { scale } from './lib/env.mjs';
import { connect, one, setSystem, sleep, tableSizes } from './lib/pg.mjs';

export async function measurePrune(log) {
  const client = await connect();
  const out = {};
  try {
    const count = async () => one(client, `SELECT (SELECT count(*) FROM outbox.deliveries)::int AS deliveries,
                                                  (SELECT count(*) FROM outbox.events)::int AS events`);
    const before = await count();
    out.before = before;
    const t0 = await setSystem(client, { 'outbox.retention': '1s' });
    const start = performance.now();
    const deadline = start + scale.pruneDeadlineS * 1000;
    const samples = [[0, before.deliveries, before.events]];
    let now = before;
    log(`prune: waiting for the worker to prune ${before.deliveries.toLocaleString('en-US')} deliveries ` +
        `(at most ${scale.pruneDeadlineS} s)`);
    while (performance.now() < deadline && (now.deliveries > 0 || now.events > 0)) {
      await sleep(1000);
      now = await count();
      samples.push([(performance.now() - start) / 1000, now.deliveries, now.events]);
      if (samples.length % 15 === 0) log(`prune: ${now.deliveries.toLocaleString('en-US')} deliveries left`);
    }
    const last = await one(client, 'SELECT extract(epoch FROM clock_timestamp())::float8 AS t');
    out.complete = now.deliveries === 0 && now.events === 0;
    out.left = now;
    out.seconds = last.t - t0;
    out.pruned = before.deliveries - now.deliveries;
    out.rowsPerSecond = out.pruned / Math.max(1, out.seconds);
    out.samples = samples;
    await client.query('VACUUM outbox.events, outbox.deliveries');
    out.sizes = await tableSizes(client);
    log(`prune: ${out.pruned} deliveries pruned in ${out.seconds.toFixed(0)} s` + (out.complete ? '' : ' (incomplete)'));
  } finally {
    await setSystem(client, { 'outbox.retention': null });
    await client.end();
  }
  return out;
}
