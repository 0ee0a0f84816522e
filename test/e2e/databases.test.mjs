// One server, many databases (outbox.database = '', the default): every
// database with the extension is served without a restart; CREATE and DROP
// EXTENSION start and stop its workers, and rolled back change nothing;
// DROP DATABASE (without FORCE) and RENAME work while events flow;
// templates and databases that refuse connections are never entered; one
// worker budget; outbox.workers and outbox.paused per database; a list of
// names serves those only.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { waitFor } from '../lib/cluster.mjs';
import { startCluster } from '../lib/cluster.mjs';
import { addEndpoint, createDatabase, enqueue, startServingAll, watchWorkers, workersByDatabase } from '../lib/databases.mjs';
import { startSink, TEST_SECRET } from '../lib/sink.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const count = (text, pattern) => (text.match(pattern) || []).length;
const dbOf = (sink) => new Set(sink.requests.map((r) => JSON.parse(r.body).db));

// The statement's notices, and its error if it failed.
async function notices(cluster, sql, database) {
  const client = await cluster.client(database);
  const seen = [];
  client.on('notice', (n) => seen.push(n));
  try {
    await client.query(sql);
    return { notices: seen };
  } catch (error) {
    return { notices: seen, error };
  } finally {
    await client.end();
  }
}

describe('many databases', () => {
  test('every database with the extension is served without a restart; templates and databases refusing connections are never entered', async (t) => {
    const sink = await startSink({ secrets: [TEST_SECRET] });
    const cluster = await startServingAll();
    const watch = watchWorkers(cluster);
    try {
      // CREATE EXTENSION in a new database: served, no restart.
      await createDatabase(cluster, 'shop', { extension: false });
      const client = await cluster.client('shop');
      await client.query('BEGIN');
      await client.query('CREATE EXTENSION outbox');
      await client.query('SELECT outbox.create_endpoint($1, $2, secret => $3)', ['own', sink.url, TEST_SECRET]);
      const first = (await client.query("SELECT outbox.enqueue('t', '{\"db\": \"shop\"}') AS id")).rows[0].id;
      const started = Date.now();
      await client.query('COMMIT');
      await client.end();
      await sink.waitForIds([first]);
      t.diagnostic(`CREATE EXTENSION committed to the first delivery: ${Date.now() - started} ms`);

      // A template with the extension is never entered; CREATE DATABASE
      // from it works (it needs the template free of sessions) and the copy
      // is served.
      const tpl = await notices(cluster, 'CREATE EXTENSION outbox', 'template1');
      assert.equal(tpl.error, undefined);
      const warning = tpl.notices.find((n) => n.severity === 'WARNING');
      assert.match(warning?.message ?? '', /database "template1" is a template or does not allow connections/);
      await createDatabase(cluster, 'from_template', { extension: false, sink });
      await sink.waitForIds(await enqueue(cluster, 'from_template'));

      // CREATE DATABASE ... TEMPLATE of a served database: its workers step
      // aside for the copy, and both are served.
      await createDatabase(cluster, 'shop_copy', { extension: false, options: 'TEMPLATE shop' });
      await sink.waitForIds([...await enqueue(cluster, 'shop_copy'), ...await enqueue(cluster, 'shop')]);

      // ALLOW_CONNECTIONS false: its workers leave and none enters; true
      // again: served again.
      await cluster.query('ALTER DATABASE shop_copy ALLOW_CONNECTIONS false', [], 'postgres');
      await waitFor(async () => !(await workersByDatabase(cluster)).shop_copy, { message: 'shop_copy left' });
      await sleep(6000);  // past the launcher's periodic look at pg_database
      assert.equal((await workersByDatabase(cluster)).shop_copy, undefined, 'no worker in shop_copy');
      await cluster.query('ALTER DATABASE shop_copy ALLOW_CONNECTIONS true', [], 'postgres');
      await sink.waitForIds(await enqueue(cluster, 'shop_copy'));

      // A database without the extension has no worker (its first one
      // looked and left).
      await createDatabase(cluster, 'plain', { extension: false, options: 'TEMPLATE template0' });
      await sleep(1000);
      assert.equal((await workersByDatabase(cluster)).plain, undefined);
      await watch.stop();
      assert.ok(!watch.seen.has('template1') && !watch.seen.has('template0'), `workers seen in ${[...watch.seen]}`);
      assert.doesNotMatch(cluster.log(), /not currently accepting connections|FATAL/);
      assert.deepEqual([...dbOf(sink)].sort(), ['from_template', 'shop', 'shop_copy']);
      assert.ok(sink.requests.every((r) => r.verified));
    } finally {
      await watch.stop();
      await cluster.destroy();
      await sink.close();
    }
  });

  test('a rolled-back CREATE or DROP EXTENSION changes nothing; DROP EXTENSION stops the workers, CREATE EXTENSION starts them', async () => {
    const sink = await startSink({ secrets: [TEST_SECRET] });
    const cluster = await startServingAll({ conf: { 'outbox.workers': 2 } });
    try {
      await createDatabase(cluster, 'shop', { sink });
      await createDatabase(cluster, 'later', { extension: false });
      await waitFor(async () => (await workersByDatabase(cluster)).shop === 2, { message: 'two workers in shop' });
      const pids = async (db) => (await cluster.query(
        "SELECT array_agg(pid ORDER BY pid) AS p FROM pg_stat_activity WHERE backend_type = 'outbox worker' AND datname = $1",
        [db], 'postgres')).rows[0].p;
      const before = await pids('shop');

      // Rolled back: the same workers deliver on.
      const client = await cluster.client('shop');
      await client.query('BEGIN');
      await client.query('DROP EXTENSION outbox');
      await client.query('ROLLBACK');
      await client.end();
      const other = await cluster.client('later');
      await other.query('BEGIN');
      await other.query('CREATE EXTENSION outbox');
      await other.query('ROLLBACK');
      await other.end();
      await sink.waitForIds(await enqueue(cluster, 'shop'));
      await sleep(1500);
      assert.deepEqual(await pids('shop'), before, 'the same workers');
      assert.equal((await workersByDatabase(cluster)).later, undefined, 'nothing in "later"');

      // Committed: the workers leave; created again: served again.
      await cluster.query('DROP EXTENSION outbox', [], 'shop');
      await waitFor(async () => !(await workersByDatabase(cluster)).shop, { message: 'the workers leaving shop' });
      assert.match(cluster.log(), /outbox: extension "outbox" was dropped in database "shop"; its workers stop/);
      assert.match(cluster.log(), /outbox: database "shop" has no outbox extension any more/);
      await cluster.query('CREATE EXTENSION outbox', [], 'shop');
      await addEndpoint(cluster, 'shop', sink);
      await sink.waitForIds(await enqueue(cluster, 'shop'));
      await cluster.query('CREATE EXTENSION outbox', [], 'later');
      await addEndpoint(cluster, 'later', sink);
      await sink.waitForIds(await enqueue(cluster, 'later'));
      assert.doesNotMatch(cluster.log(), /outbox: worker \d+ exited/, 'no worker exit taken for a crash');
    } finally {
      await cluster.destroy();
      await sink.close();
    }
  });

  test('DROP DATABASE without FORCE succeeds while events flow; ALTER DATABASE RENAME keeps delivering', async (t) => {
    // A slow receiver keeps requests in flight.
    const sink = await startSink({
      secrets: [TEST_SECRET],
      respond: (r) => ({ status: 204, delay: JSON.parse(r.body).db === 'doomed' ? 200 : 10 }),
    });
    const cluster = await startServingAll({ conf: { 'outbox.workers': 2, 'outbox.max_in_flight': 4 } });
    try {
      await createDatabase(cluster, 'doomed', { sink });
      await createDatabase(cluster, 'renamed', { sink });
      const doomed = await enqueue(cluster, 'doomed', 300);
      const renamed = await enqueue(cluster, 'renamed', 150, { key: 'one-key' });
      await waitFor(() => dbOf(sink).size === 2, { message: 'both delivering' });

      let started = Date.now();
      await cluster.query('DROP DATABASE doomed', [], 'postgres');
      t.diagnostic(`DROP DATABASE with deliveries in flight: ${Date.now() - started} ms`);
      assert.ok(doomed.some((id) => !sink.byId(id).length), 'it was dropped while events were still to deliver');

      started = Date.now();
      await cluster.query('ALTER DATABASE renamed RENAME TO renamed_now', [], 'postgres');
      t.diagnostic(`RENAME with deliveries in flight: ${Date.now() - started} ms`);
      const more = await enqueue(cluster, 'renamed_now', 20, { key: 'one-key', from: 150 });
      await sink.waitForIds([...renamed, ...more], { timeout: 60000 });
      // The key's order held through the rename: each event first arrived
      // after every earlier one (a request in flight as the workers stopped
      // may come again).
      const firsts = [...new Set(sink.requests.filter((r) => JSON.parse(r.body).db !== 'doomed').map((r) => JSON.parse(r.body).n))];
      assert.deepEqual(firsts, [...firsts].sort((x, y) => x - y));
      assert.match(cluster.log(), /outbox: database "renamed" is now called "renamed_now"; delivery goes on/);
      assert.equal((await workersByDatabase(cluster)).renamed_now, 2);
    } finally {
      await cluster.destroy();
      await sink.close();
    }
  });

  test('one budget: every database gets a worker, the LOG says who got fewer, too small a max_worker_processes is said', async () => {
    const sink = await startSink({ secrets: [TEST_SECRET] });
    // The launcher and three workers fit (no logical replication launcher
    // takes one); four databases need four.
    const cluster = await startServingAll({
      conf: { max_worker_processes: 4, max_logical_replication_workers: 0, 'outbox.workers': 2, 'outbox.max_workers': 3 },
    });
    try {
      for (const db of ['a', 'b', 'c']) await createDatabase(cluster, db, { sink });
      await waitFor(async () => Object.values(await workersByDatabase(cluster)).reduce((x, y) => x + y, 0) === 3,
        { message: 'three workers' });
      assert.deepEqual(await workersByDatabase(cluster), { a: 1, b: 1, c: 1 });
      await waitFor(() => count(cluster.log(), /gets 1 of the 2 workers it asks for: 3 workers are shared by 3 databases/g) >= 1,
        { message: 'the LOG of who got fewer' });

      await createDatabase(cluster, 'd', { sink });
      const starved = await enqueue(cluster, 'd');
      await waitFor(() => /max_worker_processes \(4\) is too small for the outbox launcher and 4 workers in 4 databases/.test(cluster.log()),
        { message: 'max_worker_processes too small, said' });
      await waitFor(() => /could not start worker 0 of database "\w": no free background worker slot/.test(cluster.log()),
        { message: 'the database without a worker named' });
      // A slot frees: the database waiting gets its worker.
      await cluster.query('DROP DATABASE a', [], 'postgres');
      await sink.waitForIds(starved);
      for (const db of ['b', 'c', 'd']) await sink.waitForIds(await enqueue(cluster, db));
    } finally {
      await cluster.destroy();
      await sink.close();
    }
  });

  test('outbox.workers and outbox.paused per database (ALTER DATABASE ... SET)', async () => {
    const sink = await startSink({ secrets: [TEST_SECRET] });
    const cluster = await startServingAll({ conf: { 'outbox.workers': 1 } });
    try {
      await createDatabase(cluster, 'production', { sink });
      await createDatabase(cluster, 'staging', { sink });
      await cluster.query('ALTER DATABASE production SET outbox.workers = 3', [], 'postgres');
      await waitFor(async () => (await workersByDatabase(cluster)).production === 3, { message: 'three workers in production' });
      assert.equal((await workersByDatabase(cluster)).staging, 1);

      // A copy of production must not send production's webhooks.
      await cluster.query('ALTER DATABASE staging SET outbox.paused = on', [], 'postgres');
      await sleep(200);
      const held = await enqueue(cluster, 'staging', 5);
      await sink.waitForIds(await enqueue(cluster, 'production', 5));
      await sleep(1500);
      assert.ok(held.every((id) => sink.byId(id).length === 0), 'staging sends nothing');
      // Also after a restart (the launcher and the workers read it anew).
      await cluster.restart();
      await sink.waitForIds(await enqueue(cluster, 'production', 1));
      await sleep(1500);
      assert.ok(held.every((id) => sink.byId(id).length === 0), 'staging sends nothing after a restart');
      await cluster.query('ALTER DATABASE staging RESET outbox.paused', [], 'postgres');
      await sink.waitForIds(held);

      // A copy made from production, with events production has not sent
      // yet, paused before anything can run in it (README, "Several
      // databases"): it sends none of them.
      await cluster.query('ALTER DATABASE production SET outbox.paused = on', [], 'postgres');
      await sleep(200);
      const pending = await enqueue(cluster, 'production', 5);
      await cluster.query('CREATE DATABASE copy TEMPLATE production ALLOW_CONNECTIONS false', [], 'postgres');
      await cluster.query('ALTER DATABASE copy SET outbox.paused = on', [], 'postgres');
      await cluster.query('ALTER DATABASE copy ALLOW_CONNECTIONS true', [], 'postgres');
      await waitFor(async () => (await workersByDatabase(cluster)).copy === 1, { message: 'the copy served, paused' });
      await cluster.query('ALTER DATABASE production RESET outbox.paused', [], 'postgres');
      await sink.waitForIds(pending);
      await sleep(1500);
      assert.ok(pending.every((id) => sink.byId(id).length === 1), 'sent by production only, once');

      // The server's setting holds where a database has none of its own.
      await cluster.reload({ 'outbox.paused': 'on' });
      await cluster.query('ALTER DATABASE production SET outbox.paused = off', [], 'postgres');
      await sleep(200);
      const paused = await enqueue(cluster, 'staging');
      await sink.waitForIds(await enqueue(cluster, 'production'));
      await sleep(1000);
      assert.equal(sink.byId(paused[0]).length, 0, 'staging follows the server: paused');
      await cluster.query('ALTER DATABASE production SET outbox.workers = 1', [], 'postgres');
      await waitFor(async () => (await workersByDatabase(cluster)).production === 1, { message: 'one worker in production' });
    } finally {
      await cluster.destroy();
      await sink.close();
    }
  });

  test('a list of names serves those only; CREATE EXTENSION elsewhere warns; DROP DATABASE of a named one works', async () => {
    const sink = await startSink({ secrets: [TEST_SECRET] });
    const cluster = await startCluster({
      database: 'postgres', createDatabase: false, createExtension: false,
      conf: { 'outbox.database': 'one, "Two"' },
    });
    try {
      await createDatabase(cluster, 'one', { sink });
      await createDatabase(cluster, 'Two', { sink });
      await cluster.query('CREATE DATABASE three', [], 'postgres');
      const created = await notices(cluster, 'CREATE EXTENSION outbox', 'three');
      const warning = created.notices.find((n) => n.severity === 'WARNING');
      assert.match(warning?.message ?? '', /outbox.database does not name database "three"/);
      assert.match(warning?.hint ?? '', /outbox.database/);
      await addEndpoint(cluster, 'three', sink);
      const unserved = await enqueue(cluster, 'three');
      await sink.waitForIds([...await enqueue(cluster, 'one'), ...await enqueue(cluster, 'Two')]);
      await sleep(1000);
      assert.equal(sink.byId(unserved[0]).length, 0);
      assert.equal((await workersByDatabase(cluster)).three, undefined);

      await enqueue(cluster, 'one', 50);
      await cluster.query('DROP DATABASE one', [], 'postgres');
      await waitFor(() => /database "one" named by outbox.database does not exist/.test(cluster.log()),
        { message: 'the named database missing, said' });
    } finally {
      await cluster.destroy();
      await sink.close();
    }
  });
});
