// Broker endpoints end to end: the real worker publishes into a 3-node NATS
// JetStream cluster, RabbitMQ and Redis on loopback ports (test/lib/brokers.mjs),
// with the same guarantees as HTTP: per-key order, retries with backoff
// through a broker's outage, dead letters for refusals, statistics, and
// credentials that never show. One PostgreSQL cluster for the file, each
// broker started once by its block.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';

import {
  natsAddStream, natsStreamMessages, rabbitQueueMessages, redisStream, startNatsCluster, startRabbit, startRedis,
  withRabbitChannel,
} from '../lib/brokers.mjs';
import { startCluster, waitFor } from '../lib/cluster.mjs';
import { fakeNats } from '../lib/fake_brokers.mjs';
import { startSink } from '../lib/sink.mjs';

let cluster;

before(async () => {
  cluster = await startCluster({ conf: { 'outbox.log_attempts': 'all' } });
});
after(async () => {
  await cluster?.destroy();
});

// Enqueues `keys` x `perKey` events of `topic` ({key, n} payloads), one
// transaction per n; returns their ids.
async function enqueueKeyed(topic, keys, from, to) {
  const ids = [];
  for (let n = from; n < to; n++) {
    const { rows } = await cluster.query(
      `SELECT outbox.enqueue($1, jsonb_build_object('key', 'k' || k, 'n', $2::int), key => 'k' || k,
                             headers => '{"x-source": "e2e"}') AS id
       FROM generate_series(1, $3::int) AS k`, [topic, n, keys]);
    ids.push(...rows.map((r) => r.id));
  }
  return ids;
}

async function deliveries(endpoint) {
  const { rows } = await cluster.query(
    `SELECT count(*) FILTER (WHERE d.state = 'delivered')::int AS delivered,
            count(*) FILTER (WHERE d.state = 'dead')::int AS dead,
            count(*) FILTER (WHERE d.state = 'pending')::int AS pending,
            coalesce(sum(d.attempts), 0)::int AS attempts
     FROM outbox.deliveries AS d JOIN outbox.endpoints AS ep ON ep.id = d.endpoint_id WHERE ep.name = $1`, [endpoint]);
  return rows[0];
}

// Enqueues two events of `topic` for an endpoint that refuses them (max_attempts
// 3): both end dead after three failed attempts with `status`; returns
// their last errors and the endpoint's outbox.stats row.
async function expectDead(endpoint, topic, status) {
  await cluster.query('SELECT outbox.enqueue($1, \'{}\') FROM generate_series(1, 2)', [topic]);
  await waitFor(async () => (await deliveries(endpoint)).dead === 2, { message: `two dead at ${endpoint}` });
  const { rows } = await cluster.query(
    `SELECT d.attempts, d.last_status, d.last_error FROM outbox.deliveries AS d
     JOIN outbox.endpoints AS ep ON ep.id = d.endpoint_id WHERE ep.name = $1`, [endpoint]);
  assert.deepEqual(rows.map((r) => [r.attempts, r.last_status]), [[3, status], [3, status]]);
  const stats = (await cluster.query('SELECT * FROM outbox.stats WHERE endpoint = $1', [endpoint])).rows[0];
  assert.deepEqual([Number(stats.dead), Number(stats.failed_attempts), Number(stats.delivered)], [2, 6, 0]);
  return { errors: rows.map((r) => r.last_error), stats };
}

// Everything an admin or a log could see about an endpoint, as one text.
async function visible(endpoint) {
  const parts = [];
  for (const sql of [
    'SELECT * FROM outbox.endpoint_status WHERE name = $1',
    'SELECT * FROM outbox.stats WHERE endpoint = $1',
    'SELECT * FROM outbox.endpoints WHERE name = $1',
    `SELECT d.* FROM outbox.deliveries AS d JOIN outbox.endpoints AS ep ON ep.id = d.endpoint_id WHERE ep.name = $1`,
    `SELECT a.* FROM outbox.attempts AS a JOIN outbox.endpoints AS ep ON ep.id = a.endpoint_id WHERE ep.name = $1`,
  ]) parts.push(JSON.stringify((await cluster.query(sql, [endpoint])).rows));
  parts.push(cluster.log());
  return parts.join('\n');
}

// The node the worker's NATS connection is on: the one whose port has an
// established TCP connection from a client (libnats picks a server of the
// URL's list at random; nothing else is connected while events stream).
function connectedNode(nodes) {
  const established = new Set();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = fs.readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 3 && f[3] === '01') established.add(parseInt(f[2].split(':')[1], 16));  // remote port
    }
  }
  return nodes.find((n) => established.has(n.port)) ?? nodes[0];
}

describe('NATS JetStream, 3-node cluster', () => {
  let nats;
  before(async () => {
    nats = await startNatsCluster();
    await natsAddStream(nats, { name: 'EVENTS', subjects: ['events.>'], replicas: 3, duplicateWindow: 600000 });
  });
  after(async () => {
    await nats?.stop();
  });

  test('keyed events through a node killed and brought back: each exactly once, in key order', async (t) => {
    await cluster.query(`SELECT outbox.create_endpoint('nats', $1, topics => '{nats.order}', max_attempts => 1000,
                                                       timeout => '5s')`, [`${nats.url}/events.{topic}.{key}`]);
    const keys = 8;
    const perKey = 40;
    // One transaction per round of keys; the node the worker is connected
    // to is killed right after a commit (its messages in flight: a key's
    // next one is published as soon as the previous one is acknowledged),
    // events go on being committed while it is down, and it comes back.
    const ids = [];
    let victim;
    let atKill = 0;
    for (let n = 0; n < perKey; n++) {
      if (n === perKey / 4) {
        // Stopped first (SIGSTOP), so that this round's messages are surely
        // in flight, unanswered, when it dies.
        victim = connectedNode(nats.nodes);
        await victim.pause();
      }
      ids.push(...await enqueueKeyed('nats.order', keys, n, n + 1));
      if (n === perKey / 4) {
        await waitFor(async () => Number((await cluster.query(
          "SELECT in_flight FROM outbox.stats WHERE endpoint = 'nats'")).rows[0].in_flight) > 0,
                      { message: 'messages in flight to the stopped node' });
        await victim.kill();
        atKill = (await deliveries('nats')).delivered;
      }
      if (n === (3 * perKey) / 4) {
        await waitFor(async () => (await deliveries('nats')).delivered >= keys * perKey / 2,
                      { timeout: 60000, message: 'delivered with a node down' });
        await victim.start();
      }
    }
    await waitFor(async () => (await deliveries('nats')).delivered === keys * perKey,
                  { timeout: 90000, message: 'every event delivered' });

    const messages = await natsStreamMessages(nats, 'EVENTS');
    const seen = new Map();
    for (const m of messages) seen.set(m.id, (seen.get(m.id) ?? 0) + 1);
    const twice = [...seen].filter(([, n]) => n > 1);
    const perSubject = new Map();
    for (const m of messages) {
      const list = perSubject.get(m.subject) ?? [];
      list.push(JSON.parse(m.payload).n);
      perSubject.set(m.subject, list);
    }
    const stats = await deliveries('nats');
    const failed = (await cluster.query(
      "SELECT count(*)::int AS n FROM outbox.attempts AS a JOIN outbox.endpoints AS ep ON ep.id = a.endpoint_id WHERE ep.name = 'nats' AND a.status IS DISTINCT FROM 200"))
      .rows[0].n;
    t.diagnostic(`NATS cluster: ${ids.length} events committed; node ${victim.name} (the worker's) killed with messages in flight ` +
                 `(${atKill} of the first ${keys * (perKey / 4 + 1)} delivered), started again after ${(3 * perKey) / 4} rounds; ` +
                 `${messages.length} messages in stream EVENTS (${seen.size} distinct ids, ${twice.length} duplicated), ` +
                 `${perSubject.size} subjects each in key order; ${stats.attempts} publish attempts, ${failed} failed ` +
                 `(sent again; JetStream drops a resend by Nats-Msg-Id)`);
    assert.equal(twice.length, 0, `duplicates: ${JSON.stringify(twice.slice(0, 5))}`);
    assert.deepEqual([...seen.keys()].sort(), [...ids].sort());
    assert.equal(perSubject.size, keys);
    for (const [subject, ns] of perSubject) {
      assert.match(subject, /^events\.nats\.order\.k\d+$/);
      assert.deepEqual(ns, [...Array(perKey).keys()], `${subject} out of order`);
    }
    const first = messages[0];
    assert.equal(first.headers['x-source'], 'e2e');
    assert.equal(JSON.parse(first.payload).key, first.subject.split('.').pop());
  });
});

describe('RabbitMQ', () => {
  let rabbit;
  const declare = () => withRabbitChannel(rabbit, async (ch) => {
    await ch.assertExchange('events', 'topic', { durable: true });
    await ch.assertQueue('orders', { durable: true });
    await ch.bindQueue('orders', 'events', 'rabbit.#');
  });
  before(async () => {
    rabbit = await startRabbit();
    await declare();
    const url = rabbit.url.replace('amqp://', 'amqp://guest:guest@');
    await cluster.query(`SELECT outbox.create_endpoint('rabbit', $1, topics => '{rabbit.*}', max_attempts => 1000,
                                                       headers => '{"x-team": "billing"}')`,
                        [`${url}/%2F?exchange=events&routing_key={topic}`]);
    await cluster.query(`SELECT outbox.create_endpoint('rabbit-unroutable', $1, topics => '{unroutable}',
                                                       max_attempts => 3, retry_base => '50ms', retry_max => '100ms')`,
                        [`${url}/%2F?exchange=events&routing_key=nowhere.{topic}`]);
  });
  after(async () => {
    await rabbit?.close();
  });

  test('delivery: message_id = event id, type = topic, headers, persistent; credentials kept out of sight', async () => {
    const { rows } = await cluster.query(
      `SELECT outbox.enqueue('rabbit.order', jsonb_build_object('i', i), key => 'r' || i,
                             headers => '{"x-trace": "t1"}')::text AS id FROM generate_series(1, 5) AS i`);
    await waitFor(async () => (await deliveries('rabbit')).delivered === 5, { message: 'five delivered' });
    const messages = await rabbitQueueMessages(rabbit, 'orders');
    assert.deepEqual(messages.map((m) => m.id).sort(), rows.map((r) => r.id).sort());
    for (const m of messages) {
      assert.equal(m.type, 'rabbit.order');
      assert.equal(m.routingKey, 'rabbit.order');
      assert.equal(m.persistent, true);
      assert.equal(m.contentType, 'application/json');
      assert.equal(m.headers['x-team'], 'billing');
      assert.equal(m.headers['x-trace'], 't1');
    }
    assert.doesNotMatch(await visible('rabbit'), /guest:guest/);
  });

  test('a broker restart in the middle loses nothing', async (t) => {
    const before = (await deliveries('rabbit')).delivered;
    const ids = await enqueueKeyed('rabbit.order', 4, 0, 10);
    await rabbit.restart({ timeout: 60000 });
    await declare();  // as its consumers would, after a restart
    ids.push(...await enqueueKeyed('rabbit.order', 4, 10, 20));
    await waitFor(async () => (await deliveries('rabbit')).delivered === before + ids.length,
                  { timeout: 90000, message: 'every event delivered after the restart' });
    const got = new Set((await rabbitQueueMessages(rabbit, 'orders')).map((m) => m.id));
    const missing = ids.filter((id) => !got.has(id));
    const stats = await deliveries('rabbit');
    t.diagnostic(`RabbitMQ restart: ${ids.length} events, ${got.size} distinct in the queue, ${stats.attempts} attempts`);
    assert.deepEqual(missing, []);
  });

  test('unroutable messages (mandatory, no queue bound) are failures, then dead', async () => {
    const { errors } = await expectDead('rabbit-unroutable', 'unroutable', 312);
    for (const e of errors) assert.match(e, /NO_ROUTE/);
  });
});

describe('Redis Streams', () => {
  let redis;
  const password = 'n0t-for-logs-7731';
  before(async () => {
    redis = await startRedis({ password, persist: true });
    await cluster.query(`SELECT outbox.create_endpoint('redis', $1, topics => '{redis.*}', max_attempts => 1000)`,
                        [`redis://:${password}@127.0.0.1:${redis.port}/events-{topic}`]);
    await cluster.query(`SELECT outbox.create_endpoint('redis-badpw', $1, topics => '{badpw}', secret => ':wrong-pw',
                                                       max_attempts => 3, retry_base => '50ms', retry_max => '100ms')`,
                        [`redis://127.0.0.1:${redis.port}/badpw`]);
  });
  after(async () => {
    await redis?.stop();
  });

  test('delivery: XADD with id, topic, key, headers and payload fields', async () => {
    const { rows } = await cluster.query(
      `SELECT outbox.enqueue('redis.user', jsonb_build_object('i', i), key => CASE WHEN i = 1 THEN NULL ELSE 'u' || i END,
                             headers => '{"x-trace": "t2"}')::text AS id FROM generate_series(1, 3) AS i`);
    await waitFor(async () => (await deliveries('redis')).delivered === 3, { message: 'three delivered' });
    const entries = await redisStream(redis, 'events-redis.user');
    assert.deepEqual(entries.map((e) => e.id), rows.map((r) => r.id));
    assert.equal(entries[0].key, undefined);
    assert.equal(entries[1].key, 'u2');
    for (const e of entries) {
      assert.equal(e.topic, 'redis.user');
      assert.equal(e.headers['x-trace'], 't2');
      assert.ok('i' in JSON.parse(e.payload));
    }
    assert.doesNotMatch(await visible('redis'), new RegExp(password));
  });

  test('a restart in the middle loses nothing', async (t) => {
    const ids = await enqueueKeyed('redis.order', 4, 0, 10);
    await redis.restart();
    ids.push(...await enqueueKeyed('redis.order', 4, 10, 20));
    await waitFor(async () => (await deliveries('redis')).delivered === 3 + ids.length,
                  { timeout: 60000, message: 'every event delivered after the restart' });
    const entries = await redisStream(redis, 'events-redis.order');
    const got = new Set(entries.map((e) => e.id));
    t.diagnostic(`Redis restart: ${ids.length} events, ${entries.length} entries (${got.size} distinct)`);
    assert.deepEqual(ids.filter((id) => !got.has(id)), []);
    // Per key, in order (a resend may repeat an entry; consumers dedupe on id).
    const perKey = new Map();
    for (const e of entries) {
      const { key, n } = JSON.parse(e.payload);
      const list = perKey.get(key) ?? [];
      if (list.at(-1) !== n) list.push(n);
      perKey.set(key, list);
    }
    for (const [key, ns] of perKey) assert.deepEqual(ns, [...Array(20).keys()], `${key} out of order`);
  });

  test('wrong credentials are failures (403), then dead, and never shown', async () => {
    await expectDead('redis-badpw', 'badpw', 403);
    assert.doesNotMatch(await visible('redis-badpw'), /wrong-pw/);
  });
});

describe('a broker that stalls its handshake beside a webhook endpoint', () => {
  let peer;
  let receiver;
  before(async () => {
    // A NATS "server" that accepts and never says INFO: the connect waits
    // for outbox.connect_timeout, on a connect thread; the worker's loop
    // goes on serving the webhook endpoint.
    peer = await fakeNats('silent');
    receiver = await startSink();
    await cluster.reload({ 'outbox.connect_timeout': '20s' });
    await cluster.query(`SELECT outbox.create_endpoint('stalled', $1, topics => '{stall.*}')`, [peer.url('/events')]);
    await cluster.query(`SELECT outbox.create_endpoint('beside', $1, topics => '{stall.*}')`, [receiver.url]);
  });
  after(async () => {
    await cluster.query(`SELECT outbox.drop_endpoint(name) FROM outbox.endpoints WHERE name IN ('stalled', 'beside')`);
    await cluster.reload({ 'outbox.connect_timeout': null });
    await receiver?.close();
    await peer?.close();
  });

  test('the webhook deliveries arrive while the broker connect is still waiting', async (t) => {
    const latencies = [];
    const ids = [];
    for (let i = 0; i < 20; i++) {
      const started = Date.now();  // the enqueue's transaction commits on its own
      const { rows } = await cluster.query(`SELECT outbox.enqueue('stall.event', jsonb_build_object('i', $1::int))::text AS id`, [i]);
      ids.push(rows[0].id);
      await receiver.waitForIds([rows[0].id]);
      latencies.push(receiver.byId(rows[0].id)[0].receivedAt - started);
    }
    // Before: the first broker message held the loop in its connect for
    // connect_timeout (20 s) and failed; the webhook deliveries waited behind it.
    const { rows } = await cluster.query(
      `SELECT count(*)::int AS deliveries, count(*) FILTER (WHERE d.last_error IS NOT NULL)::int AS failed
       FROM outbox.deliveries AS d JOIN outbox.endpoints AS ep ON ep.id = d.endpoint_id WHERE ep.name = 'stalled'`);
    assert.equal(peer.connections, 1, 'one connect attempt, still waiting for INFO');
    assert.deepEqual(rows[0], { deliveries: 20, failed: 0 }, 'no broker attempt has ended yet');
    latencies.sort((a, b) => a - b);
    t.diagnostic(`beside a stalled broker connect (connect_timeout 20 s): 20 webhook deliveries, enqueue to receipt ` +
                 `p50 ${latencies[10]} ms, max ${latencies[19]} ms`);
  });
});
