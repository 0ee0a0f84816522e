// 11. Keyed drains (issue 16): a backlog of events spread over 1, 10 and
// 100 keys (one key: every event waits for its predecessor), and over 10,000
// keys, enqueued while paused and drained as in drain.mjs. Per-key order is
// checked on the way out: each key's deliveries finished in seq order.
import { scale } from './lib/env.mjs';
import { connect, one, resetQueue, setSystem } from './lib/pg.mjs';
import { enqueueBacklog, unpauseAndDrain } from './drain.mjs';

export async function measureHotKey(log) {
  const client = await connect();
  const rounds = [];
  try {
    for (const [keys, n] of scale.keyedDrains) {
      await setSystem(client, { 'outbox.paused': 'on' });
      await resetQueue(client);
      await client.query('VACUUM outbox.events, outbox.deliveries');
      log(`keyed drain: enqueueing ${n.toLocaleString('en-US')} events over ${keys} keys while paused`);
      await enqueueBacklog(client, n, 'bench.keyed', keys);
      const out = await unpauseAndDrain(client, n, log, `${keys} keys`);
      // Order: within a key, finished_at never goes back as seq goes up.
      const order = await one(client, `
        SELECT count(*)::int AS inversions FROM (
          SELECT finished_at < lag(finished_at) OVER (PARTITION BY key ORDER BY seq) AS back
          FROM outbox.deliveries) AS s WHERE back`);
      rounds.push({ keys, events: n, ...out, inversions: order.inversions });
    }
    return { rounds };
  } finally {
    await setSystem(client, { 'outbox.paused': 'off' }).catch(() => {});
    await client.end();
  }
}
