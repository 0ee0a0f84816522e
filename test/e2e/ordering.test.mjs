// Per-key order: events with the same key reach the endpoint in enqueue
// order, with two workers claiming concurrently and a receiver that fails a
// third of the requests (so deliveries are retried). Unkeyed events flow in
// parallel meanwhile.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startCluster, waitFor } from '../lib/cluster.mjs';
import { prng, startWithReceiver } from '../lib/setup.mjs';
import { startSink, TEST_SECRET } from '../lib/sink.mjs';


describe('per-key ordering', () => {
  let cluster;
  let sink;
  const seed = Number(process.env.OUTBOX_TEST_SEED || 20261123);
  const random = prng(seed);
  const acknowledged = new Map();  // key -> [n, ...] in the order 2xx answers were given
  const violations = [];

  before(async () => {
    sink = await startSink({
      secrets: [TEST_SECRET],
      respond: (r) => {
        const { key, n } = JSON.parse(r.body);
        if (key === undefined) return { status: random() < 0.3 ? 500 : 204 };
        const done = acknowledged.get(key) || [];
        // Sent only once every earlier event of the key was acknowledged.
        if (done.length !== n) violations.push(`${key}: request for ${n} after acknowledging ${done.length}`);
        if (random() < 0.3) return { status: 500 };
        if (!done.includes(n)) done.push(n);
        acknowledged.set(key, done);
        return { status: 204 };
      },
    });
    cluster = await startCluster({
      conf: {
        'outbox.url': sink.url, 'outbox.secret': TEST_SECRET, 'outbox.workers': 2,
        'outbox.retry_base': '20ms', 'outbox.retry_max': '200ms', 'outbox.max_attempts': 30,
      },
    });
    await waitFor(async () => (await cluster.workerPids()).length === 2, { message: 'two workers' });
  });
  after(async () => {
    await cluster?.destroy();
    await sink?.close();
  });

  test(`keys stay in order through retries and two workers (seed ${seed})`, async (t) => {
    const keys = 20;
    const perKey = 15;
    // Interleaved across keys and transactions, plus unkeyed events.
    for (let n = 0; n < perKey; n++) {
      await cluster.query(
        `SELECT outbox.enqueue('ordered', jsonb_build_object('key', 'k' || k, 'n', $1::int), key => 'k' || k)
         FROM generate_series(0, $2::int - 1) AS k`, [n, keys]);
      await cluster.query(
        "SELECT outbox.enqueue('unordered', jsonb_build_object('i', i)) FROM generate_series(1, 5) AS i");
    }
    await waitFor(async () => (await cluster.counts()).pending === 0 && (await cluster.counts()).delivered === keys * perKey + perKey * 5,
      { timeout: 60000, message: 'everything delivered' });
    t.diagnostic(`${sink.requests.length} requests for ${keys * perKey + perKey * 5} events (failures retried)`);
    assert.deepEqual(violations, []);
    for (let k = 0; k < keys; k++) {
      assert.deepEqual(acknowledged.get(`k${k}`), [...Array(perKey).keys()], `key k${k} in order`);
    }
  });
});

// The worker's claims and pruning rely on READ COMMITTED (a later statement
// sees what an earlier one's lock waited for). A cluster whose default is
// SERIALIZABLE must not change that: the worker sets its own isolation.
describe('a cluster whose default isolation is serializable', () => {
  let env;

  before(async () => {
    env = await startWithReceiver({
      conf: { 'outbox.workers': 2, 'outbox.batch_size': 5, default_transaction_isolation: 'serializable' },
    });
    await waitFor(async () => (await env.cluster.workerPids()).length === 2, { message: 'two workers' });
  });
  after(async () => {
    await env?.destroy();
  });

  test('two workers deliver a burst without serialization failures', async () => {
    const { cluster } = env;
    const events = 400;
    await cluster.query(
      `SELECT outbox.enqueue('burst', jsonb_build_object('i', i), key => 'k' || (i % 10))
       FROM generate_series(1, $1::int) AS i`, [events]);
    await waitFor(async () => (await cluster.counts()).delivered === events,
      { timeout: 60000, message: 'the burst delivered' });
    const failures = cluster.log().split('\n').filter((l) => /could not serialize|ERROR/.test(l));
    assert.deepEqual(failures, []);
  });
});
