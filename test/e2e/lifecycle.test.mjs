// The worker's life around the database it serves: a library that is not
// preloaded, a database that does not exist yet, a database without the
// extension, an extension dropped and created again. Each is logged once,
// nothing crash-loops, and delivery starts as soon as it can.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { startCluster, waitFor } from '../lib/cluster.mjs';
import { startSink, TEST_SECRET } from '../lib/sink.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const count = (text, pattern) => (text.match(pattern) || []).length;

describe('lifecycle', () => {
  test('without shared_preload_libraries, CREATE EXTENSION warns with a hint and enqueue still works', async () => {
    const cluster = await startCluster({ preload: false, createExtension: false });
    try {
      const client = await cluster.client();
      const notices = [];
      client.on('notice', (n) => notices.push(n));
      await client.query('CREATE EXTENSION outbox');
      await client.query("SELECT outbox.enqueue('t', '{}')");
      await client.end();
      const warning = notices.find((n) => n.severity === 'WARNING');
      assert.ok(warning, 'a WARNING');
      assert.match(warning.message, /not in shared_preload_libraries/);
      assert.match(warning.hint, /shared_preload_libraries/);
      assert.deepEqual(await cluster.workerPids(), []);
    } finally {
      await cluster.destroy();
    }
  });

  test('a database that does not exist yet: logged once, served once it exists', async () => {
    const sink = await startSink({ secrets: [TEST_SECRET] });
    const cluster = await startCluster({
      database: 'later_db',
      createDatabase: false,
      conf: { 'outbox.url': sink.url, 'outbox.secret': TEST_SECRET },
    });
    try {
      await waitFor(() => /database "later_db" named by outbox.database does not exist/.test(cluster.log()),
        { message: 'the missing-database warning' });
      await sleep(3000);  // the launcher keeps checking, without repeating itself or crashing
      const log = cluster.log();
      assert.equal(count(log, /named by outbox\.database does not exist/g), 1, 'logged once');
      assert.doesNotMatch(log, /terminated by signal|exited with exit code [1-9]/);
      await cluster.query('CREATE DATABASE later_db', [], 'postgres');
      await cluster.query('CREATE EXTENSION outbox', [], 'later_db');
      const id = (await cluster.query("SELECT outbox.enqueue('t', '{}') AS id", [], 'later_db')).rows[0].id;
      await sink.waitForIds([id]);
      assert.match(cluster.log(), /database "later_db" exists now; starting workers/);
    } finally {
      await cluster.destroy();
      await sink.close();
    }
  });

  test('a database without the extension, then DROP and CREATE EXTENSION while the worker runs', async () => {
    const sink = await startSink({ secrets: [TEST_SECRET] });
    const cluster = await startCluster({
      createExtension: false,
      conf: { 'outbox.url': sink.url, 'outbox.secret': TEST_SECRET },
    });
    try {
      await waitFor(() => /extension "outbox" is not installed in database "outbox_test"; waiting/.test(cluster.log()),
        { message: 'the missing-extension message' });
      await sleep(1500);
      assert.equal(count(cluster.log(), /is not installed in database/g), 1, 'logged once');
      await cluster.query('CREATE EXTENSION outbox');
      const first = (await cluster.query("SELECT outbox.enqueue('t', '{\"n\": 1}') AS id")).rows[0].id;
      await sink.waitForIds([first]);

      // Dropped while the worker runs: it waits; created again: it delivers.
      await cluster.query('DROP EXTENSION outbox');
      await waitFor(() => count(cluster.log(), /is not installed in database/g) === 2, { message: 'the worker noticing' });
      await cluster.query('CREATE EXTENSION outbox');
      const second = (await cluster.query("SELECT outbox.enqueue('t', '{\"n\": 2}') AS id")).rows[0].id;
      await sink.waitForIds([second]);
      assert.equal((await cluster.workerPids()).length, 1, 'the same single worker, no restarts');
      assert.doesNotMatch(cluster.log(), /outbox: worker \d+ exited/);
    } finally {
      await cluster.destroy();
      await sink.close();
    }
  });

  test('outbox.workers = 2: two workers share the queue, each event arrives once', async () => {
    const sink = await startSink({ secrets: [TEST_SECRET] });
    const cluster = await startCluster({
      conf: { 'outbox.url': sink.url, 'outbox.secret': TEST_SECRET, 'outbox.workers': 2, 'outbox.max_in_flight': 4 },
    });
    try {
      await waitFor(async () => (await cluster.workerPids()).length === 2, { message: 'two workers' });
      const { rows } = await cluster.query(
        "SELECT array_agg(outbox.enqueue('t', jsonb_build_object('i', i))) AS ids FROM generate_series(1, 500) AS i");
      await sink.waitForIds(rows[0].ids);
      await waitFor(async () => (await cluster.counts()).pending === 0, { message: 'all recorded' });
      assert.equal(sink.requests.length, 500, 'no duplicates with two claimers');
    } finally {
      await cluster.destroy();
      await sink.close();
    }
  });

  test('delivered events are pruned after outbox.retention', async () => {
    const sink = await startSink({ secrets: [TEST_SECRET] });
    const cluster = await startCluster({
      conf: { 'outbox.url': sink.url, 'outbox.secret': TEST_SECRET, 'outbox.retention': '1s' },
    });
    try {
      const { rows } = await cluster.query(
        "SELECT array_agg(outbox.enqueue('t', jsonb_build_object('i', i))) AS ids FROM generate_series(1, 30) AS i");
      await sink.waitForIds(rows[0].ids);
      // The worker prunes every 10 s.
      await waitFor(async () => (await cluster.counts()).events === 0, { timeout: 30000, message: 'pruning' });
      assert.deepEqual(await cluster.counts(), { events: 0, pending: 0, delivered: 0, dead: 0 });
    } finally {
      await cluster.destroy();
      await sink.close();
    }
  });
});
