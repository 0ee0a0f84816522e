// Callbacks end to end (README, "Callbacks"): the real worker calls the
// function an event or its endpoint names when a delivery ends, in the
// transaction that records the end, as the role that named it: for a 2xx
// with a JSON body and headers, for a delivery that died, for a broker's
// acknowledgement (Redis). A failing callback is retried on its own
// schedule (never the webhook), dies after outbox.callback_max_attempts
// with outbox.callback.dead, and holds its key's next delivery until it
// has committed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startRedis } from '../lib/brokers.mjs';
import { startCluster, waitFor } from '../lib/cluster.mjs';
import { startSink, TEST_SECRET } from '../lib/sink.mjs';

describe('callbacks', () => {
  let cluster;
  let sink;
  const received = new Map();  // event id -> [time received, ...]

  before(async () => {
    sink = await startSink({
      secrets: [TEST_SECRET],
      respond: (r) => {
        received.set(r.id, [...(received.get(r.id) || []), Date.now()]);
        const { topic } = JSON.parse(r.body);
        if (topic === 'broken') return { status: 500, body: 'down for maintenance' };
        return { status: 201, headers: { 'content-type': 'application/json', location: `/payments/${r.id}` },
                 body: JSON.stringify({ payment_id: `pi_${r.id.slice(0, 8)}` }) };
      },
    });
    cluster = await startCluster({ conf: { 'outbox.callback_max_attempts': 3, 'outbox.log_attempts': 'all' } });
    await cluster.query(`
      CREATE ROLE cb_app IN ROLE outbox_writer;
      CREATE ROLE cb_admin IN ROLE outbox_admin;
      CREATE ROLE cb_stranger IN ROLE outbox_writer;
      CREATE SCHEMA app;
      GRANT USAGE ON SCHEMA app TO cb_app, cb_admin, cb_stranger;
      CREATE TABLE app.results (event_id uuid, fn text, topic text, key text, endpoint text, state text,
                                attempts int, status int, response jsonb, location text, run_as name,
                                at timestamptz DEFAULT clock_timestamp());
      GRANT INSERT ON app.results TO cb_app, cb_admin;
      CREATE SEQUENCE app.tries;
      GRANT USAGE ON SEQUENCE app.tries TO cb_app;
      CREATE FUNCTION app.on_result(r outbox.delivery_result) RETURNS void LANGUAGE plpgsql AS $$
      BEGIN
          INSERT INTO app.results (event_id, fn, topic, key, endpoint, state, attempts, status, response, location, run_as)
          VALUES (r.event_id, 'on_result', r.topic, r.key, r.endpoint, r.state, r.attempts, r.status, r.response,
                  r.response_headers ->> 'location', current_user);
          IF r.topic = 'order.created' THEN  -- the next step, committed with this one's result
              PERFORM outbox.enqueue('order.paid', jsonb_build_object('topic', 'order.paid', 'after', r.event_id));
          END IF;
      END $$;
      CREATE FUNCTION app.endpoint_result(r outbox.delivery_result) RETURNS void LANGUAGE sql AS $$
          INSERT INTO app.results (event_id, fn, topic, state, run_as)
          VALUES (r.event_id, 'endpoint_result', r.topic, r.state, current_user)
      $$;
      -- Fails on its first two calls (a sequence is not rolled back with them).
      CREATE FUNCTION app.flaky(r outbox.delivery_result) RETURNS void LANGUAGE plpgsql AS $$
      BEGIN
          INSERT INTO app.results (event_id, fn, topic, key, state, run_as)
          VALUES (r.event_id, 'flaky', r.topic, r.key, r.state, current_user);
          IF nextval('app.tries') <= 2 THEN
              RAISE EXCEPTION 'not yet (call %)', currval('app.tries');
          END IF;
      END $$;
      CREATE FUNCTION app.always_fails(r outbox.delivery_result) RETURNS void LANGUAGE plpgsql AS $$
      BEGIN
          RAISE EXCEPTION 'cannot apply %', r.event_id;
      END $$;
      CREATE FUNCTION app.private(r outbox.delivery_result) RETURNS void LANGUAGE sql AS $$ SELECT $$;
      REVOKE EXECUTE ON FUNCTION app.private(outbox.delivery_result) FROM PUBLIC;
    `);
    await cluster.query(`SET ROLE cb_admin;
      SELECT outbox.create_endpoint('shop', ${cluster.literal(sink.url)}, topics => '{order.*,broken}',
                                    secret => ${cluster.literal(TEST_SECRET)}, max_attempts => 2,
                                    on_result => 'app.endpoint_result')`);
  });
  after(async () => {
    await cluster?.destroy();
    await sink?.close();
  });

  // Enqueues as cb_app (the role its callback runs as); returns the id.
  async function enqueue(topic, { key = null, onResult = null, role = 'cb_app' } = {}) {
    const client = await cluster.client();
    try {
      await client.query(`SET ROLE ${role}`);
      const { rows } = await client.query(
        `SELECT outbox.enqueue($1, jsonb_build_object('topic', $1::text), key => $2, on_result => $3)::text AS id`,
        [topic, key, onResult]);
      return rows[0].id;
    } finally {
      await client.end();
    }
  }
  async function results(eventId) {
    return (await cluster.query('SELECT * FROM app.results WHERE event_id = $1 ORDER BY at', [eventId])).rows;
  }
  async function delivery(eventId) {
    return (await cluster.query('SELECT * FROM outbox.deliveries WHERE event_id = $1', [eventId])).rows[0];
  }

  test('delivered: called once, as the enqueuing role, with the JSON response and its headers', async () => {
    const id = await enqueue('order.created', { key: 'o-1', onResult: 'app.on_result' });
    await waitFor(async () => (await delivery(id))?.callback_state === 'done', { message: 'callback done' });
    const [r] = await results(id);
    assert.deepEqual([r.fn, r.topic, r.key, r.endpoint, r.state, r.attempts, r.status, r.run_as],
                     ['on_result', 'order.created', 'o-1', 'shop', 'delivered', 1, 201, 'cb_app']);
    assert.deepEqual(r.response, { payment_id: `pi_${id.slice(0, 8)}` });
    assert.equal(r.location, `/payments/${id}`);
    // Its enqueue() committed with it, and was delivered in turn (where
    // the endpoint's own callback, run as the admin who set it, recorded it).
    await waitFor(async () => (await cluster.query(
      `SELECT 1 FROM app.results WHERE fn = 'endpoint_result' AND topic = 'order.paid' AND run_as = 'cb_admin'`)).rowCount === 1,
    { message: 'the follow-up delivered and its endpoint callback called' });
    assert.equal((await results(id)).length, 1, 'called once');
    assert.equal(received.get(id).length, 1);
  });

  test("dead: called with the last status; the event's own callback wins over the endpoint's", async () => {
    const own = await enqueue('broken', { onResult: 'app.on_result' });
    const plain = await enqueue('broken');
    await waitFor(async () => (await delivery(own))?.state === 'dead' && (await delivery(plain))?.state === 'dead' &&
                              (await delivery(own)).callback_state === 'done', { message: 'both dead' });
    const [r] = await results(own);
    assert.deepEqual([r.fn, r.state, r.attempts, r.status, r.response], ['on_result', 'dead', 2, 500, null]);
    assert.deepEqual((await results(plain)).map((x) => [x.fn, x.state, x.run_as]), [['endpoint_result', 'dead', 'cb_admin']]);
  });

  test('a failing callback is retried on its own, without sending again, then done', async () => {
    await cluster.query("SELECT setval('app.tries', 1, false)");
    const id = await enqueue('order.flaky', { onResult: 'app.flaky' });
    await waitFor(async () => (await delivery(id))?.state === 'delivered', { message: 'delivered' });
    const first = await delivery(id);
    assert.equal(first.callback_state, 'pending');
    assert.match(first.callback_error, /not yet/);
    await waitFor(async () => (await delivery(id)).callback_state === 'done', { message: 'callback done in the end' });
    const done = await delivery(id);
    assert.equal(done.callback_attempts, 3);
    assert.equal(done.callback_error, null);
    assert.equal((await results(id)).length, 1, 'the failed calls were rolled back');
    assert.equal(received.get(id).length, 1, 'the webhook was sent once');
  });

  test('dead after outbox.callback_max_attempts, announced as outbox.callback.dead', async () => {
    const id = await enqueue('order.doomed', { onResult: 'app.always_fails' });
    await waitFor(async () => (await delivery(id))?.callback_state === 'dead', { message: 'callback dead' });
    const d = await delivery(id);
    assert.deepEqual([d.state, d.callback_attempts], ['delivered', 3]);
    assert.match(d.callback_error, /cannot apply/);
    const { rows } = await cluster.query(
      "SELECT payload FROM outbox.events WHERE topic = 'outbox.callback.dead' AND payload ->> 'event_id' = $1", [id]);
    assert.equal(rows.length, 1);
    assert.deepEqual([rows[0].payload.endpoint, rows[0].payload.callback, rows[0].payload.attempts],
                     ['shop', 'app.always_fails(outbox.delivery_result)', 3]);
    const stats = (await cluster.query("SELECT callbacks_dead FROM outbox.stats WHERE endpoint = 'shop'")).rows[0];
    assert.equal(Number(stats.callbacks_dead), 1);
    assert.equal(received.get(id).length, 1);
  });

  test("a key's next event is sent only once its predecessor's callback has committed", async () => {
    await cluster.query("SELECT setval('app.tries', 1, false)");
    const step1 = await enqueue('order.step', { key: 'saga-7', onResult: 'app.flaky' });
    const step2 = await enqueue('order.step', { key: 'saga-7', onResult: 'app.flaky' });
    await waitFor(async () => (await delivery(step2))?.callback_state === 'done', { message: 'both steps done' });
    const [committed] = (await results(step1)).filter((x) => x.fn === 'flaky');
    const d1 = await delivery(step1);
    assert.equal(d1.callback_attempts, 3, 'the first step needed three calls');
    assert.ok(received.get(step2)[0] >= new Date(committed.at).getTime(),
              'step 2 reached the receiver after step 1 was applied');
    assert.equal(received.get(step1).length, 1);
  });

  test('EXECUTE is checked when a callback is named (42501)', async () => {
    await assert.rejects(enqueue('order.created', { onResult: 'app.private', role: 'cb_stranger' }),
                         (err) => err.code === '42501' && /GRANT EXECUTE/.test(err.hint));
  });

  test('a broker acknowledgement calls the callback too (Redis)', async () => {
    const redis = await startRedis();
    try {
      await cluster.query(`SELECT outbox.create_endpoint('redis', $1, topics => '{stream.*}')`,
                          [`redis://127.0.0.1:${redis.port}/events`]);
      const id = await enqueue('stream.item', { key: 'k1', onResult: 'app.on_result' });
      await waitFor(async () => (await delivery(id))?.callback_state === 'done', { message: 'callback after the XADD' });
      const [r] = await results(id);
      assert.deepEqual([r.endpoint, r.state, r.status, r.run_as], ['redis', 'delivered', 200, 'cb_app']);
    } finally {
      await redis.stop();
    }
  });
});
