// How the worker keeps a fast drain fast: requests claimed ahead of the free
// slots (and handed back, uncounted, when they cannot be sent), pauses an
// endpoint asks for shared by all workers, and plans
// that follow the queue's growth instead of staying as they were made for
// an empty table.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { waitFor } from '../lib/cluster.mjs';
import { startWithReceiver } from '../lib/setup.mjs';

describe('delivery pipeline', () => {
  const envs = [];
  after(async () => {
    for (const env of envs) await env.destroy();
  });

  test('a claim made ahead for a paused endpoint is handed back without counting an attempt', async () => {
    // One request slot, claims of two: the second delivery waits, claimed,
    // while the first is answered 429 Retry-After (slowly, so that the
    // second is surely claimed by then).
    let calls = 0;
    const env = await startWithReceiver({
      conf: { 'outbox.max_in_flight': 1, 'outbox.batch_size': 2, 'outbox.retry_base': '100ms' },
      respond: () => (++calls === 1 ? { delay: 300, status: 429, headers: { 'retry-after': '1' } } : { status: 204 }),
    });
    envs.push(env);
    const { cluster, sink } = env;
    const client = await cluster.client();
    const ids = [];
    try {
      await client.query('BEGIN');
      for (const n of [1, 2]) {
        ids.push((await client.query("SELECT outbox.enqueue('ahead.test', $1::jsonb) AS id", [JSON.stringify({ n })])).rows[0].id);
      }
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    await sink.waitForIds(ids, { timeout: 10000 });
    const attempts = async (id) =>
      (await cluster.query('SELECT attempts, state FROM outbox.deliveries WHERE event_id = $1', [id])).rows[0];
    await waitFor(async () => (await attempts(ids[1])).state === 'delivered', { message: 'both recorded' });
    await waitFor(async () => (await attempts(ids[0])).state === 'delivered', { message: 'both recorded' });
    assert.equal((await attempts(ids[0])).attempts, 2, 'the throttled one: 429, then delivered');
    assert.equal((await attempts(ids[1])).attempts, 1, 'the one claimed ahead was sent once, and counted once');
    assert.equal(sink.requests.filter((r) => r.id === ids[1]).length, 1);
    const throttledAt = sink.requests[0].receivedAt;
    const secondAt = sink.requests.find((r) => r.id === ids[1]).receivedAt;
    assert.ok(secondAt - throttledAt >= 900, `nothing sent during the pause (${secondAt - throttledAt} ms)`);
  });

  test('a 429 Retry-After pauses the endpoint for every worker, not only the one that got it', async () => {
    // Two workers, each with one request slot, answered slowly enough that
    // both are always sending; the first request gets 429 Retry-After: 2.
    let calls = 0;
    const env = await startWithReceiver({
      conf: { 'outbox.workers': 2, 'outbox.max_in_flight': 1, 'outbox.batch_size': 1, 'outbox.retry_max': '5s' },
      respond: () => (++calls === 1 ? { delay: 300, status: 429, headers: { 'retry-after': '2' } }
                                    : { delay: 50, status: 204 }),
    });
    envs.push(env);
    const { cluster, sink } = env;
    const { rows } = await cluster.query("SELECT outbox.enqueue('pause.shared', jsonb_build_object('n', g)) AS id FROM generate_series(1, 30) AS g");
    await sink.waitForIds(rows.map((r) => r.id), { timeout: 20000 });
    const answeredAt = sink.requests[0].receivedAt + 300;
    const during = sink.requests.filter((r) => r.receivedAt > answeredAt + 150 && r.receivedAt < answeredAt + 1800);
    assert.equal(during.length, 0, `requests during the pause: ${during.map((r) => r.receivedAt - answeredAt).join(', ')} ms after the 429`);
    assert.ok(sink.requests.filter((r) => r.receivedAt < answeredAt).length >= 3, 'the other worker was sending meanwhile');
  });

  test('plans made on an empty queue are re-made as it grows', async () => {
    // auto_explain shows the plans the worker runs. Autovacuum is off, so
    // nothing but the worker's own re-planning can replace a plan made
    // while outbox.deliveries was empty (sequential scans, hash joins).
    const env = await startWithReceiver({
      conf: {
        shared_preload_libraries: 'outbox,auto_explain',
        'auto_explain.log_min_duration': 0,
        'auto_explain.log_nested_statements': 'on',
        autovacuum: 'off',
        log_line_prefix: '%m [%p] %b ',
      },
    });
    envs.push(env);
    const { cluster, sink } = env;
    // A few deliveries while the queue is nearly empty: plans get cached.
    const first = [];
    for (let i = 0; i < 8; i++) first.push((await cluster.query("SELECT outbox.enqueue('grow.small', '{}') AS id")).rows[0].id);
    await sink.waitForIds(first);
    await cluster.reload({ 'outbox.paused': 'on' });
    await cluster.query(`DO $$ BEGIN
      FOR i IN 1..100 LOOP
        PERFORM outbox.enqueue('grow.big', jsonb_build_object('i', g)) FROM generate_series(1, 200) AS g;
        COMMIT;
      END LOOP; END $$`);
    const logFrom = cluster.log().length;
    await cluster.reload({ 'outbox.paused': 'off' });
    await waitFor(async () => sink.requests.length >= 20008, { timeout: 120000, message: '20,000 delivered' });
    const plans = cluster.log().slice(logFrom).split(/\n(?=\S+ \S+ UTC \[)/).filter((e) => /outbox worker LOG:  duration/.test(e));
    assert.ok(plans.length > 100, `the worker's plans were logged (${plans.length})`);
    // The last plans, made after the growth: record() finds each result by
    // the primary key, and nothing reads all of deliveries.
    const late = plans.slice(-60).join('\n');
    assert.doesNotMatch(late, /Seq Scan on deliveries/);
    assert.match(late, /Index Scan using deliveries_pkey/);
  });
});
