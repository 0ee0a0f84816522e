// What happens after delivery: finished deliveries and their events are
// pruned after outbox.retention, events that no endpoint matched too, and
// once nothing is left the tables are truncated, so that their indexes give
// back the space a burst took. Events that could not be dispatched yet (no
// endpoint enabled) are never pruned, and go out the moment one is enabled.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { waitFor } from '../lib/cluster.mjs';
import { startWithReceiver } from '../lib/setup.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

describe('pruning', () => {
  let env;
  before(async () => {
    // Worker 0 prunes every 10 s; two workers, so that the one that does
    // not prune is there too.
    env = await startWithReceiver({ conf: { 'outbox.retention': '1s', 'outbox.workers': 2 } });
  });
  after(async () => {
    await env?.destroy();
  });

  const counts = async () =>
    (await env.cluster.query(`SELECT (SELECT count(*) FROM outbox.events)::int AS events,
                                      (SELECT count(*) FROM outbox.deliveries)::int AS deliveries`)).rows[0];
  const totalBytes = async () =>
    Number((await env.cluster.query(`SELECT pg_total_relation_size('outbox.events')
                                            + pg_total_relation_size('outbox.deliveries') AS bytes`)).rows[0].bytes);

  test('with every endpoint disabled events wait, unpruned, and go out as soon as one is enabled', async () => {
    const { cluster, sink } = env;
    await cluster.query("SELECT outbox.disable_endpoint('default', 'test')");
    const ids = (await cluster.query("SELECT outbox.enqueue('wait.test', '{}') AS id FROM generate_series(1, 3)")).rows.map((r) => r.id);
    await sleep(11000);  // past a prune round and many polls
    assert.equal(sink.requests.length, 0);
    // (Besides the outbox.endpoint.disabled event the disabling announced.)
    const waiting = await cluster.query("SELECT count(*)::int AS n FROM outbox.events WHERE topic = 'wait.test'");
    assert.equal(waiting.rows[0].n, 3, 'not dispatched, so not pruned');
    await cluster.query("SELECT outbox.enable_endpoint('default')");
    await sink.waitForIds(ids, { timeout: 5000 });
  });

  test('delivered and unmatched events are pruned; the empty tables are truncated to their starting size', async () => {
    const { cluster, sink } = env;
    const start = await totalBytes();
    // The default endpoint takes only order.*: user.* events match nothing.
    await cluster.query("UPDATE outbox.endpoints SET topics = '{order.*}' WHERE id = 0");
    await cluster.query(`DO $$ BEGIN
      FOR i IN 1..40 LOOP
        PERFORM outbox.enqueue(CASE WHEN g % 4 = 0 THEN 'user.seen' ELSE 'order.placed' END,
                               jsonb_build_object('i', g, 'pad', repeat('x', 200)))
        FROM generate_series(1, 500) AS g;
        COMMIT;
      END LOOP; END $$`);
    await waitFor(async () => sink.requests.length >= 3 + 15000, { timeout: 60000, message: '15,000 delivered' });
    const peak = await totalBytes();
    assert.ok(peak > 4 * 1024 * 1024, `the burst grew the tables (${peak} bytes)`);
    await waitFor(async () => {
      const c = await counts();
      return c.events === 0 && c.deliveries === 0;
    }, { timeout: 60000, message: 'every event and delivery pruned' });
    await waitFor(async () => /truncated them, giving back \d+ kB/.test(cluster.log()),
                  { timeout: 30000, message: 'the truncation' });
    const end = await totalBytes();
    assert.ok(end <= start + 64 * 1024, `back near the start: ${start} bytes before, ${peak} at the peak, ${end} after`);
    assert.equal(sink.requests.filter((r) => r.body.includes('"pad"') && JSON.parse(r.body).i % 4 === 0).length, 0,
                 'user.seen went nowhere');
    // Still works afterwards.
    const id = (await cluster.query("SELECT outbox.enqueue('order.after', '{}') AS id")).rows[0].id;
    await sink.waitForIds([id]);
  });
});
