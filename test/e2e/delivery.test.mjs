// Delivery end to end: a real cluster with the extension preloaded, the real
// worker, a real receiver verifying Standard Webhooks signatures.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { waitFor } from '../lib/cluster.mjs';
import { startWithReceiver } from '../lib/setup.mjs';

describe('delivery to the default endpoint', () => {
  let cluster;
  let sink;

  let env;

  before(async () => {
    env = await startWithReceiver();
    ({ cluster, sink } = env);
  });
  after(async () => env?.destroy());
  beforeEach(() => {
    sink.clear();
    sink.respond = () => ({ status: 204 });
  });

  test('committed events arrive once each, byte for byte, signed', async () => {
    const payloads = [
      { id: 42, total: 99.5, items: [1, 2, 3] },
      { text: 'grüße, 你好, "quotes", \\ backslash', nested: { a: [null, true, false] } },
      [1, 'two', { three: 3 }],
      'a plain string',
      12345678901234567890,
    ];
    const ids = [];
    const client = await cluster.client();
    try {
      await client.query('BEGIN');
      await client.query('CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY)');
      await client.query('INSERT INTO orders VALUES (42)');
      for (const [i, p] of payloads.entries()) {
        const { rows } = await client.query('SELECT outbox.enqueue($1, $2::jsonb, key => $3) AS id',
          ['order.created', JSON.stringify(p), `order-${i}`]);
        ids.push(rows[0].id);
      }
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    await sink.waitForIds(ids);
    // Wait a little longer: nothing may arrive twice.
    await waitFor(async () => (await cluster.counts()).delivered >= ids.length, { message: 'deliveries recorded' });
    for (const id of ids) {
      const got = sink.byId(id);
      assert.equal(got.length, 1, `event ${id} arrived ${got.length} times`);
      const { rows } = await cluster.query('SELECT payload::text AS body FROM outbox.events WHERE id = $1', [id]);
      assert.equal(got[0].body, rows[0].body, 'body is the payload text');
      assert.ok(got[0].raw.equals(Buffer.from(rows[0].body, 'utf8')), 'body bytes are the payload text\'s UTF-8 bytes');
      assert.equal(got[0].error, null);
      assert.equal(got[0].verified, true, 'signature verifies with the standardwebhooks package');
      assert.equal(got[0].method, 'POST');
      assert.equal(got[0].headers['content-type'], 'application/json');
      assert.match(got[0].headers['user-agent'], /^outbox\//);
      assert.match(got[0].timestamp, /^\d{10}$/);
      assert.match(got[0].signature, /^v1,[A-Za-z0-9+/]+=*$/);
    }
    const { rows } = await cluster.query(
      "SELECT state, attempts, last_status FROM outbox.deliveries WHERE event_id = ANY($1)", [ids]);
    assert.deepEqual(rows.map((r) => [r.state, r.attempts, r.last_status]),
      ids.map(() => ['delivered', 1, 204]));
  });

  test('a rolled-back transaction never sends; a rolled-back savepoint takes only its events', async () => {
    const client = await cluster.client();
    let rolledBack;
    let kept;
    let droppedInSavepoint;
    try {
      await client.query('BEGIN');
      rolledBack = (await client.query("SELECT outbox.enqueue('order.created', '{\"rolled\": \"back\"}') AS id")).rows[0].id;
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      kept = (await client.query("SELECT outbox.enqueue('order.created', '{\"kept\": 1}') AS id")).rows[0].id;
      await client.query('SAVEPOINT s');
      droppedInSavepoint = (await client.query("SELECT outbox.enqueue('order.created', '{\"kept\": 0}') AS id")).rows[0].id;
      await client.query('ROLLBACK TO SAVEPOINT s');
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    const marker = (await cluster.query("SELECT outbox.enqueue('marker', '{}') AS id")).rows[0].id;
    await sink.waitForIds([kept, marker]);
    assert.equal(sink.byId(rolledBack).length, 0);
    assert.equal(sink.byId(droppedInSavepoint).length, 0);
  });

  test('event headers are sent; webhook-id is the id enqueue() returned', async () => {
    const { rows } = await cluster.query(
      `SELECT outbox.enqueue('user.created', '{"u": 1}', headers => '{"X-Tenant": "acme", "x-trace-id": "t-1"}') AS id`);
    const id = rows[0].id;
    await sink.waitForIds([id]);
    const [got] = sink.byId(id);
    assert.equal(got.headers['x-tenant'], 'acme');
    assert.equal(got.headers['x-trace-id'], 't-1');
    assert.equal(got.id, id);
  });

  test('500 then 200: delivered on retry, both attempts counted', async () => {
    sink.queue({ status: 500, body: 'try later' });
    sink.respond = () => ({ status: 200 });
    const id = (await cluster.query("SELECT outbox.enqueue('order.created', '{\"retry\": 1}') AS id")).rows[0].id;
    await waitFor(async () => {
      const { rows } = await cluster.query('SELECT state FROM outbox.deliveries WHERE event_id = $1', [id]);
      return rows[0]?.state === 'delivered';
    }, { message: 'delivery after a retry' });
    const { rows } = await cluster.query(
      'SELECT attempts, last_status, last_error FROM outbox.deliveries WHERE event_id = $1', [id]);
    assert.deepEqual(rows[0], { attempts: 2, last_status: 200, last_error: null });
    assert.equal(sink.byId(id).length, 2);
  });

  test('max_attempts makes a delivery dead, kept and queryable', async () => {
    await cluster.reload({ 'outbox.max_attempts': '3' });
    try {
      sink.respond = () => ({ status: 500, body: 'always broken' });
      const id = (await cluster.query("SELECT outbox.enqueue('order.created', '{\"dead\": 1}') AS id")).rows[0].id;
      await waitFor(async () => {
        const { rows } = await cluster.query('SELECT state FROM outbox.deliveries WHERE event_id = $1', [id]);
        return rows[0]?.state === 'dead';
      }, { message: 'a dead delivery' });
      const { rows } = await cluster.query(
        `SELECT attempts, last_status, last_error, last_response, finished_at IS NOT NULL AS finished,
                last_duration IS NOT NULL AS timed
         FROM outbox.deliveries WHERE event_id = $1`, [id]);
      assert.deepEqual(rows[0], { attempts: 3, last_status: 500, last_error: 'HTTP 500', last_response: 'always broken',
                                  finished: true, timed: true });
      // No fourth attempt.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(sink.byId(id).length, 3);
    } finally {
      await cluster.reload({ 'outbox.max_attempts': null });
    }
  });

  test('a receiver that is down and comes back gets everything', async () => {
    await sink.down();
    const ids = [];
    for (let i = 0; i < 20; i++) {
      ids.push((await cluster.query('SELECT outbox.enqueue($1, $2::jsonb) AS id', ['order.created', JSON.stringify({ down: i })])).rows[0].id);
    }
    await waitFor(async () => {
      const { rows } = await cluster.query(
        "SELECT count(*)::int AS n FROM outbox.deliveries WHERE event_id = ANY($1) AND attempts >= 1 AND last_error IS NOT NULL", [ids]);
      return rows[0].n === ids.length;
    }, { message: 'failed attempts while the receiver is down' });
    const { rows } = await cluster.query(
      'SELECT DISTINCT last_error FROM outbox.deliveries WHERE event_id = ANY($1)', [ids]);
    assert.ok(rows.every((r) => /connect/i.test(r.last_error)), JSON.stringify(rows));
    await sink.up();
    await sink.waitForIds(ids);
  });

  test('paused: nothing is sent and events accumulate; unpaused: they all flow', async () => {
    await cluster.reload({ 'outbox.paused': 'on' });
    const ids = [];
    for (let i = 0; i < 10; i++) {
      ids.push((await cluster.query("SELECT outbox.enqueue('order.created', '{}') AS id")).rows[0].id);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(ids.filter((id) => sink.byId(id).length > 0).length, 0, 'nothing sent while paused');
    const { rows } = await cluster.query(
      `SELECT count(*)::int AS waiting FROM outbox.events e
       WHERE NOT EXISTS (SELECT 1 FROM outbox.deliveries d WHERE d.event_id = e.id AND d.state <> 'pending')
         AND e.id = ANY($1)`, [ids]);
    assert.equal(rows[0].waiting, ids.length);
    await cluster.reload({ 'outbox.paused': 'off' });
    await sink.waitForIds(ids);
  });

  test('the worker is visible in pg_stat_activity as "outbox worker"', async () => {
    const pids = await cluster.workerPids();
    assert.equal(pids.length, 1);
    // and its transactions are short: it holds no snapshot while idle. A
    // sample may fall inside one of its polls (under ASan they are slow:
    // CI caught one), so it must be seen without a snapshot soon, not at
    // the first look.
    await waitFor(async () => (await cluster.query(
      "SELECT backend_xmin IS NULL AS no_xmin FROM pg_stat_activity WHERE backend_type = 'outbox worker'")).rows[0]?.no_xmin === true,
    { timeout: 5000, message: 'the idle worker without a snapshot' });
  });
});
