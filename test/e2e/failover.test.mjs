// Failover: a streaming standby with the library preloaded runs no delivery;
// once promoted, it delivers every event the primary committed and
// replicated, each at least once, in per-key order.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startStandby, waitFor } from '../lib/cluster.mjs';
import { startWithReceiver } from '../lib/setup.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Map.groupBy, which node 20 lacks: key -> items in their order.
function groupBy(items, keyOf) {
  const groups = new Map();
  for (const item of items) {
    const key = keyOf(item);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(item);
  }
  return groups;
}

describe('failover to a streaming standby', () => {
  let env;
  let standby;

  before(async () => {
    env = await startWithReceiver();
  });
  after(async () => {
    await standby?.destroy();
    await env?.destroy();
  });

  test('the standby delivers nothing; promoted, it delivers the backlog the primary left, in per-key order', async (t) => {
    const { cluster: primary, sink } = env;

    // The primary delivers, and has dispatch state, before the standby is made.
    const warmup = (await primary.query(
      "SELECT array_agg(outbox.enqueue('warmup', jsonb_build_object('i', i))) AS ids FROM generate_series(1, 20) AS i"))
      .rows[0].ids;
    await sink.waitForIds(warmup);

    // The standby is copied while the primary is not paused, so it is not
    // paused either: only its being a standby keeps it from delivering.
    standby = await startStandby(primary);
    await primary.reload({ 'outbox.paused': 'on' });
    sink.clear();

    // A backlog: 10 transactions of 20 events, three in four keyed (5 keys).
    const committed = [];
    for (let b = 0; b < 10; b++) {
      const { rows } = await primary.query(
        `SELECT outbox.enqueue('order.updated', jsonb_build_object('batch', $1::int, 'i', i),
                               key => CASE WHEN i % 4 = 0 THEN NULL ELSE 'order-' || (i % 5) END) AS id
           FROM generate_series(1, 20) AS i`, [b]);
      committed.push(...rows.map((r) => r.id));
    }
    const { rows: keyed } = await primary.query(
      'SELECT id, key FROM outbox.events WHERE id = ANY($1) AND key IS NOT NULL ORDER BY seq', [committed]);
    const enqueueOrder = groupBy(keyed, (r) => r.key);
    assert.equal(enqueueOrder.size, 5);

    // The standby has replayed all of it.
    const lsn = (await primary.query('SELECT pg_current_wal_lsn() AS lsn')).rows[0].lsn;
    await waitFor(async () => (await standby.query('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [lsn])).rows[0].ok,
      { message: `the standby to replay up to ${lsn}` });
    const replayed = await standby.query('SELECT count(*)::int AS n FROM outbox.events WHERE id = ANY($1)', [committed]);
    assert.equal(replayed.rows[0].n, committed.length);
    const standbyState = await standby.query(
      `SELECT pg_is_in_recovery() AS recovery, current_setting('outbox.paused') AS paused,
              current_setting('shared_preload_libraries') AS preload`);
    assert.deepEqual(standbyState.rows[0], { recovery: true, paused: 'off', preload: 'outbox' });

    // For a while, no outbox worker runs on the standby and nothing arrives
    // (the primary is paused, so anything that arrived would be the standby's).
    const seen = new Set();
    for (const end = Date.now() + 2000; Date.now() < end; await sleep(100)) {
      for (const pid of await standby.workerPids()) seen.add(pid);
    }
    assert.deepEqual([...seen], [], 'pids of outbox workers seen on the standby');
    assert.equal(sink.requests.length, 0, 'nothing delivered during recovery');

    // The primary crashes; the standby is promoted and delivers the backlog.
    await primary.stop({ mode: 'immediate' });
    const promotedAt = Date.now();
    await standby.promote();
    assert.equal((await standby.query('SELECT pg_is_in_recovery() AS r')).rows[0].r, false);
    await sink.waitForIds(committed, { timeout: 60000 });
    t.diagnostic(`${committed.length} events delivered ${Date.now() - promotedAt} ms after promotion; ` +
      `${sink.requests.length - sink.ids().size} duplicate requests`);
    assert.ok(sink.requests.every((r) => r.verified), 'every request verifies with the shared secret');

    // Per key, first arrivals are in enqueue order.
    const firstArrivals = new Map();
    for (const r of sink.requests) if (!firstArrivals.has(r.id)) firstArrivals.set(r.id, r);
    const keyOf = new Map(keyed.map((r) => [r.id, r.key]));
    const arrivalOrder = groupBy([...firstArrivals.keys()].filter((id) => keyOf.has(id)), (id) => keyOf.get(id));
    for (const [key, events] of enqueueOrder) {
      assert.deepEqual(arrivalOrder.get(key), events.map((r) => r.id), `order of key ${key}`);
    }

    // The promoted standby records every delivery as delivered.
    await waitFor(async () => (await standby.counts()).pending === 0, { message: 'no pending deliveries on the standby' });
    const { rows } = await standby.query(
      "SELECT state, count(*)::int AS n FROM outbox.deliveries WHERE event_id = ANY($1) GROUP BY state", [committed]);
    assert.deepEqual(rows, [{ state: 'delivered', n: committed.length }]);
  });
});
