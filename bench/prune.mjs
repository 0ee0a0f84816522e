// 5. Bloat: after the drain, outbox.retention = '1s' and worker 0's own
// pruning (every 10 s while idle, rounds of 1,000 rows until done) removes
// what was delivered; once both tables are empty it truncates them. Then a
// plain VACUUM, as autovacuum would run it. Table and index sizes are taken
// before the backlog, with it, after the drain (by drain.mjs) and here.
//
// The rate is timed from the last sample that still saw every row (pruning
// starts at the worker's next round, up to 10 s after the setting) to the
// first that saw none, so it is slightly low, never high.
import { scale } from './lib/env.mjs';
import { connect, one, setSystem, sleep, tableSizes } from './lib/pg.mjs';

const kTruncatedBelow = 1 << 20;  // the worker truncates empty tables holding more

export async function measurePrune(log) {
  const client = await connect();
  const out = {};
  try {
    const count = async () => one(client, `SELECT (SELECT count(*) FROM outbox.deliveries)::int AS deliveries,
                                                  (SELECT count(*) FROM outbox.events)::int AS events`);
    const total = async () => Number((await one(client, `SELECT pg_total_relation_size('outbox.events')
                                                         + pg_total_relation_size('outbox.deliveries') AS b`)).b);
    const before = await count();
    out.before = before;
    await setSystem(client, { 'outbox.retention': '1s' });
    const start = performance.now();
    const deadline = start + scale.pruneDeadlineS * 1000;
    const samples = [[0, before.deliveries, before.events]];
    let now = before;
    let untouchedAt = start;
    log(`prune: waiting for the worker to prune ${before.deliveries.toLocaleString('en-US')} deliveries ` +
        `(at most ${scale.pruneDeadlineS} s)`);
    while (performance.now() < deadline && (now.deliveries > 0 || now.events > 0)) {
      await sleep(100);
      const sampledAt = performance.now();
      now = await count();
      if (now.deliveries === before.deliveries && now.events === before.events) untouchedAt = sampledAt;
      samples.push([(sampledAt - start) / 1000, now.deliveries, now.events]);
      if (samples.length % 150 === 0) log(`prune: ${now.deliveries.toLocaleString('en-US')} deliveries left`);
    }
    out.complete = now.deliveries === 0 && now.events === 0;
    out.left = now;
    out.seconds = (performance.now() - untouchedAt) / 1000;
    out.pruned = before.deliveries - now.deliveries;
    out.rowsPerSecond = out.pruned / Math.max(0.1, out.seconds);
    out.samples = samples;
    if (out.complete) {
      // The worker truncates in the round that finds the tables empty.
      const until = performance.now() + 15000;
      while (performance.now() < until && await total() >= kTruncatedBelow) await sleep(200);
    }
    await client.query('VACUUM outbox.events, outbox.deliveries');
    out.sizes = await tableSizes(client);
    log(`prune: ${out.pruned} deliveries pruned in ${out.seconds.toFixed(1)} s` + (out.complete ? '' : ' (incomplete)'));
  } finally {
    await setSystem(client, { 'outbox.retention': null });
    await client.end();
  }
  return out;
}
