// Databases served side by side share nothing: a commit wakes only its own
// database's workers; the counters of outbox.stats, the pauses endpoints
// ask for (429 Retry-After) and the max_in_flight limits are kept per
// database, although the endpoints of two databases have the same ids.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { waitFor } from '../lib/cluster.mjs';
import { addEndpoint, createDatabase, enqueue, startServingAll } from '../lib/databases.mjs';
import { startSink, TEST_SECRET } from '../lib/sink.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

describe('databases apart', () => {
  let cluster;
  const sinks = {};
  const held = [];  // answers the limit test keeps back
  const answer = { a: () => ({ status: 204 }), b: () => ({ status: 204 }) };

  before(async () => {
    for (const db of ['a', 'b']) {
      sinks[db] = await startSink({ secrets: [TEST_SECRET], respond: (r) => answer[db](r) });
      sinks[`${db}_limited`] = await startSink({
        secrets: [TEST_SECRET],
        respond: () => new Promise((resolve) => held.push(() => resolve({ status: 204 }))),
      });
    }
    // Only wake-ups make the workers look (no poll in the test's time).
    cluster = await startServingAll({ conf: { 'outbox.workers': 2, 'outbox.poll_interval': '1h' } });
    for (const db of ['a', 'b']) {
      // The same endpoint ids in both: own is 1, limited is 2.
      await createDatabase(cluster, db, { sink: sinks[db], endpoint: { topics: ['t'] } });
      await addEndpoint(cluster, db, sinks[`${db}_limited`], { name: 'limited', topics: ['limited'], maxInFlight: 2 });
    }
    for (const db of ['a', 'b']) await sinks[db].waitForIds(await enqueue(cluster, db));
  });
  after(async () => {
    for (const release of held) release();
    await cluster?.destroy();
    for (const sink of Object.values(sinks)) await sink.close();
  });

  test("a commit wakes only its own database's workers", async () => {
    // Each claim round shows in pg_stat_activity as the worker's last
    // activity, with the time its state changed: sampled, every round seen
    // leaves a distinct (pid, state_change).
    const rounds = { a: new Set(), b: new Set() };
    let sampling = true;
    const sampler = (async () => {
      const client = await cluster.client('postgres');
      while (sampling) {
        const { rows } = await client.query(
          `SELECT datname, pid, state_change FROM pg_stat_activity
           WHERE backend_type = 'outbox worker' AND query = 'outbox: record and claim'`);
        for (const r of rows) rounds[r.datname]?.add(`${r.pid} ${r.state_change.toISOString()}`);
        await sleep(5);
      }
      await client.end();
    })();
    await sleep(200);
    const seenBefore = { a: rounds.a.size, b: rounds.b.size };
    const ids = [];
    for (let i = 0; i < 30; i++) {
      ids.push(...await enqueue(cluster, 'a'));
      await sleep(30);
    }
    await sinks.a.waitForIds(ids);
    await sleep(300);
    sampling = false;
    await sampler;
    assert.ok(rounds.a.size - seenBefore.a >= 5, `a's workers ran claim rounds (${rounds.a.size - seenBefore.a} seen)`);
    assert.equal(rounds.b.size - seenBefore.b, 0, "b's workers ran none");
  });

  test('statistics are per database: the same endpoint id counts apart, and stats_reset() resets one', async () => {
    const stats = async (db) => (await cluster.query(
      "SELECT delivered::int, stats_reset FROM outbox.stats WHERE endpoint = 'own'", [], db)).rows[0];
    const base = { a: (await stats('a')).delivered, b: (await stats('b')).delivered };
    await sinks.a.waitForIds(await enqueue(cluster, 'a', 3));
    await sinks.b.waitForIds(await enqueue(cluster, 'b', 5));
    await waitFor(async () => (await stats('a')).delivered === base.a + 3 && (await stats('b')).delivered === base.b + 5,
      { message: 'three counted in a, five in b' });
    const bBefore = await stats('b');
    await cluster.query('SELECT outbox.stats_reset()', [], 'a');
    assert.equal((await stats('a')).delivered, 0);
    assert.deepEqual(await stats('b'), bBefore, "b's counters and reset time stay");
  });

  test('a pause an endpoint asks for (429 Retry-After) holds in its own database only', async () => {
    answer.a = () => ({ status: 429, headers: { 'retry-after': '60' } });
    try {
      const [paused] = await enqueue(cluster, 'a');
      await sinks.a.waitForIds([paused]);
      await sleep(200);
      // Endpoint 1 of b is another endpoint: it is not paused.
      await sinks.b.waitForIds(await enqueue(cluster, 'b', 5), { timeout: 10000 });
      const { rows } = await cluster.query(
        "SELECT attempts FROM outbox.deliveries WHERE event_id = $1", [paused], 'a');
      assert.equal(rows[0].attempts, 1, "a's endpoint waits out its pause");
    } finally {
      answer.a = () => ({ status: 204 });
    }
  });

  test("max_in_flight counts each database's requests", async () => {
    await enqueue(cluster, 'a', 4, { topic: 'limited' });
    await waitFor(() => sinks.a_limited.requests.length === 2, { message: "a's limited endpoint full: 2 in flight" });
    const b = await enqueue(cluster, 'b', 4, { topic: 'limited' });
    // b's endpoint 2 has a limit of its own, not a's requests against it.
    await waitFor(() => sinks.b_limited.requests.length === 2, { timeout: 10000, message: "b's two requests in flight" });
    await sleep(300);
    assert.equal(sinks.a_limited.requests.length, 2);
    assert.equal(sinks.b_limited.requests.length, 2);
    while (held.length) held.shift()();
    await waitFor(() => { while (held.length) held.shift()(); return sinks.b_limited.ids().size === 4; },
      { message: "b's four delivered" });
    assert.ok(b.every((id) => sinks.b_limited.byId(id).length > 0));
  });
});
