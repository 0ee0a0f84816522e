// How the worker learns of new events: the commit of an enqueuing
// transaction wakes it, and so does COMMIT PREPARED; NOTIFY on
// outbox.channel wakes it; otherwise the poll timer. With a poll interval
// of an hour, only the first ones can act.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startCluster, waitFor } from '../lib/cluster.mjs';
import { startSink, TEST_SECRET } from '../lib/sink.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Waits until the worker has recorded everything and had its follow-up look
// for work, so that only a new wake-up can make it act again.
async function quiesce(cluster) {
  await waitFor(async () => (await cluster.counts()).pending === 0, { message: 'no pending deliveries' });
  await sleep(300);
}

describe('wake-up with a poll interval of one hour', () => {
  let cluster;
  let sink;

  before(async () => {
    sink = await startSink({ secrets: [TEST_SECRET] });
    cluster = await startCluster({
      conf: { 'outbox.url': sink.url, 'outbox.secret': TEST_SECRET, 'outbox.poll_interval': '1h' },
    });
    // The worker's first look (at start) is over once a first event has gone through.
    const first = (await cluster.query("SELECT outbox.enqueue('warmup', '{}') AS id")).rows[0].id;
    await sink.waitForIds([first]);
  });
  after(async () => {
    await cluster?.destroy();
    await sink?.close();
  });

  test('COMMIT of an enqueuing transaction wakes the worker at once', async () => {
    const id = (await cluster.query("SELECT outbox.enqueue('order.created', '{}') AS id")).rows[0].id;
    await sink.waitForIds([id], { timeout: 10000 });
  });

  test('a prepared transaction is delivered at its COMMIT PREPARED, from another session, which wakes the worker', async () => {
    await quiesce(cluster);
    const client = await cluster.client();
    let id;
    try {
      await client.query('BEGIN');
      id = (await client.query("SELECT outbox.enqueue('order.created', '{\"2pc\": true}') AS id")).rows[0].id;
      await client.query("PREPARE TRANSACTION 'outbox_e2e'");
    } finally {
      await client.end();
    }
    await sleep(1500);
    assert.equal(sink.byId(id).length, 0, 'not delivered while only prepared');
    // A transaction manager commits it later, elsewhere: that session never
    // called enqueue(), and the utility hook wakes a worker of its database.
    await cluster.query("COMMIT PREPARED 'outbox_e2e'");
    await sink.waitForIds([id], { timeout: 10000 });
  });

  test('ROLLBACK PREPARED delivers nothing', async () => {
    const client = await cluster.client();
    let id;
    try {
      await client.query('BEGIN');
      id = (await client.query("SELECT outbox.enqueue('order.created', '{\"2pc\": false}') AS id")).rows[0].id;
      await client.query("PREPARE TRANSACTION 'outbox_e2e_rb'");
      await client.query("ROLLBACK PREPARED 'outbox_e2e_rb'");
    } finally {
      await client.end();
    }
    const marker = (await cluster.query("SELECT outbox.enqueue('marker', '{}') AS id")).rows[0].id;
    await sink.waitForIds([marker]);
    assert.equal(sink.byId(id).length, 0);
  });

  test('rows written by other means are found on NOTIFY', async () => {
    await quiesce(cluster);
    const { rows } = await cluster.query(
      `INSERT INTO outbox.events (id, topic, payload) VALUES (gen_random_uuid(), 'order.imported', '{"copy": 1}')
       RETURNING id`);
    await sleep(1000);
    assert.equal(sink.byId(rows[0].id).length, 0);
    await cluster.query("SELECT pg_notify('outbox', '')");
    await sink.waitForIds([rows[0].id], { timeout: 10000 });
  });

  test('a retry is sent when it falls due, without a poll', async () => {
    let calls = 0;
    sink.respond = () => (++calls === 1 ? { status: 503 } : { status: 204 });
    try {
      const id = (await cluster.query("SELECT outbox.enqueue('order.created', '{\"retry\": 1}') AS id")).rows[0].id;
      await waitFor(() => sink.byId(id).length >= 2, { timeout: 10000, message: 'the retry (retry_base is 100ms)' });
    } finally {
      sink.respond = () => ({ status: 204 });
    }
  });

  test('outbox.channel can be changed with a reload', async () => {
    await cluster.reload({ 'outbox.channel': 'orders_outbox' });
    // The worker handles the reload before anything else on its next wake-up.
    const marker = (await cluster.query("SELECT outbox.enqueue('marker', '{}') AS id")).rows[0].id;
    await sink.waitForIds([marker]);
    await quiesce(cluster);
    const { rows } = await cluster.query(
      `INSERT INTO outbox.events (id, topic, payload) VALUES (gen_random_uuid(), 'order.imported', '{"copy": 2}')
       RETURNING id`);
    await sleep(1000);
    assert.equal(sink.byId(rows[0].id).length, 0);
    // (PostgreSQL signals a listening backend for every NOTIFY in its
    // database and filters by channel later, so any NOTIFY would make the
    // worker look; the new channel is the one that is meant to.)
    await cluster.query('NOTIFY orders_outbox');
    await sink.waitForIds([rows[0].id], { timeout: 10000 });
  });
});

// A paused worker withdraws the latch commits set, but the end of the pause
// must still reach every worker, not only the first: the others poll once a
// minute (here: once an hour), and would sleep through a drain (bench/'s
// drains start from a pause; 0.3.0 drained with one worker of two).
describe('unpausing wakes every worker', () => {
  let cluster;
  let sink;
  let running = 0;
  let most = 0;

  before(async () => {
    sink = await startSink({
      secrets: [TEST_SECRET],
      respond: async () => {
        most = Math.max(most, ++running);
        await sleep(300);
        running--;
        return { status: 204 };
      },
    });
    cluster = await startCluster({
      conf: { 'outbox.url': sink.url, 'outbox.secret': TEST_SECRET, 'outbox.poll_interval': '1h',
              'outbox.workers': 2, 'outbox.max_in_flight': 1 },
    });
    const first = (await cluster.query("SELECT outbox.enqueue('warmup', '{}') AS id")).rows[0].id;
    await sink.waitForIds([first]);
  });
  after(async () => {
    await cluster?.destroy();
    await sink?.close();
  });

  // Six events, one request at a time per worker, 300 ms each: both
  // workers sending makes two at once.
  async function drainAfterPause(pause, unpause) {
    await quiesce(cluster);
    await pause();
    await sleep(500);
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push((await cluster.query("SELECT outbox.enqueue('order.created', '{}') AS id")).rows[0].id);
    await sleep(500);
    assert.equal(ids.filter((id) => sink.byId(id).length > 0).length, 0, 'nothing sent while paused');
    most = 0;
    await unpause();
    await sink.waitForIds(ids, { timeout: 20000 });
    assert.equal(most, 2, 'both workers sent');
  }

  test('ALTER DATABASE ... SET outbox.paused', async () => {
    const db = cluster.database;
    await drainAfterPause(
      () => cluster.query(`ALTER DATABASE ${db} SET outbox.paused = on`, [], 'postgres'),
      () => cluster.query(`ALTER DATABASE ${db} RESET outbox.paused`, [], 'postgres'));
  });

  test('outbox.paused in postgresql.conf, with a reload', async () => {
    await drainAfterPause(() => cluster.reload({ 'outbox.paused': 'on' }), () => cluster.reload({ 'outbox.paused': 'off' }));
  });
});
