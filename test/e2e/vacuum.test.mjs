// After a large drain, worker 0 has outbox.deliveries vacuumed once it is
// idle, instead of leaving the dead index entries the drain left behind to
// slow every claim until autovacuum comes round (src/pg/vacuum.hpp).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startCluster, waitFor } from '../lib/cluster.mjs';
import { startSink, TEST_SECRET } from '../lib/sink.mjs';

describe('vacuum after a drain', () => {
  let cluster;
  let sink;

  before(async () => {
    sink = await startSink({ secrets: [TEST_SECRET] });
    cluster = await startCluster({
      conf: { 'outbox.url': sink.url, 'outbox.secret': TEST_SECRET, 'outbox.workers': 1, autovacuum: 'off' },
    });
  });
  after(async () => {
    await cluster?.destroy();
    await sink?.close();
  });

  test('a drain of 20,000 events is followed by a VACUUM of outbox.deliveries, and claims read little again', async (t) => {
    const vacuums = async () => (await cluster.query(
      "SELECT vacuum_count::int AS n FROM pg_stat_user_tables WHERE relid = 'outbox.deliveries'::regclass")).rows[0].n;
    assert.equal(await vacuums(), 0);
    await cluster.query("ALTER SYSTEM SET outbox.paused = on");
    await cluster.query('SELECT pg_reload_conf()');
    await cluster.query(
      "SELECT outbox.enqueue('bulk', jsonb_build_object('i', i)) FROM generate_series(1, 20000) AS i");
    await cluster.query("ALTER SYSTEM SET outbox.paused = off");
    await cluster.query('SELECT pg_reload_conf()');
    await waitFor(async () => (await cluster.counts()).delivered === 20000, { timeout: 60000, message: 'the drain' });
    await waitFor(async () => (await vacuums()) > 0, { timeout: 20000, message: 'a vacuum of outbox.deliveries' });
    // With its dead entries gone, an empty claim reads a page or two of
    // deliveries_due, not the hundreds the drain left.
    await cluster.query("ALTER SYSTEM SET outbox.paused = on");
    await cluster.query('SELECT pg_reload_conf()');
    const client = await cluster.client();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)
        SELECT d.event_id FROM outbox.deliveries AS d
        WHERE d.state = 'pending' AND d.endpoint_id = 0 AND d.next_attempt_at <= now()
        ORDER BY d.next_attempt_at, d.seq LIMIT 100`);
      const plan = rows[0]['QUERY PLAN'][0].Plan;
      t.diagnostic(`an empty claim scan read ${plan['Shared Hit Blocks'] + plan['Shared Read Blocks']} pages`);
      assert.ok(plan['Shared Hit Blocks'] + plan['Shared Read Blocks'] <= 5);
      await client.query('ROLLBACK');
    } finally {
      await client.end();
    }
  });
});
