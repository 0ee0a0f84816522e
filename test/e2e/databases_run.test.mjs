// One server, many databases, one run: three databases enqueue at once,
// each to its own receiver, while a fourth is created with the extension,
// one is dropped (without FORCE), one is renamed and the server is
// restarted immediately (a crash). Every committed event of the databases
// that remain arrives at its own receiver, none at another's, and each
// key's events first arrive in the order they were enqueued (at least once:
// repeats after the crash are allowed).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { waitFor } from '../lib/cluster.mjs';
import { createDatabase, startServingAll, workersByDatabase } from '../lib/databases.mjs';
import { startSink, TEST_SECRET } from '../lib/sink.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const KEYS = 5;

// Enqueues transactions of 10 events (2 per key, numbered per key) into
// `database()` until stopped, riding out restarts; `database` is a function
// so that a rename can move the producer. Returns what it committed.
function produce(cluster, database, label) {
  const state = { stop: false, committed: [], unknown: [], next: Array(KEYS).fill(0) };
  state.done = (async () => {
    let client = null;
    while (!state.stop) {
      try {
        client ??= await cluster.client(database());
        const batch = [];
        for (let i = 0; i < 10; i++) {
          const key = i % KEYS;
          batch.push({ key: `k${key}`, n: state.next[key]++ });
        }
        await client.query('BEGIN');
        const { rows } = await client.query(
          `SELECT outbox.enqueue('run', jsonb_build_object('db', $1::text, 'key', b->>'key', 'n', (b->>'n')::int),
                                 key => b->>'key') AS id
           FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS e(b, o) ORDER BY o`, [label, JSON.stringify(batch)]);
        const ids = rows.map((r) => r.id);
        try {
          await client.query('COMMIT');
          state.committed.push(...ids);
        } catch (err) {
          state.unknown.push(...ids);
          throw err;
        }
        await sleep(20);
      } catch {
        try { await client?.end(); } catch { /* gone */ }
        client = null;
        await sleep(100);  // the server restarts
      }
    }
    try { await client?.end(); } catch { /* gone */ }
  })();
  state.finish = async () => {
    state.stop = true;
    await state.done;
    return state;
  };
  return state;
}

describe('many databases, one run', () => {
  test('three databases at once; a fourth created, one dropped, one renamed, an immediate restart', async (t) => {
    const sinks = {};
    for (const db of ['alpha', 'beta', 'gamma', 'delta']) sinks[db] = await startSink({ secrets: [TEST_SECRET] });
    const cluster = await startServingAll({
      conf: {
        'outbox.workers': 2,
        'outbox.request_timeout': '2s',
        'outbox.lease': '1s',  // the worker uses at least request_timeout + 5 s
        restart_after_crash: 'on',
      },
    });
    try {
      for (const db of ['alpha', 'beta', 'gamma']) await createDatabase(cluster, db, { sink: sinks[db] });
      let gammaName = 'gamma';
      const producers = {
        alpha: produce(cluster, () => 'alpha', 'alpha'),
        beta: produce(cluster, () => 'beta', 'beta'),
        gamma: produce(cluster, () => gammaName, 'gamma'),
      };
      await sleep(1500);

      // A fourth database, with the extension, mid-run.
      await createDatabase(cluster, 'delta', { sink: sinks.delta });
      producers.delta = produce(cluster, () => 'delta', 'delta');
      await sleep(1000);

      // One dropped without FORCE (once its own producer has gone).
      await producers.beta.finish();
      await cluster.query('DROP DATABASE beta', [], 'postgres');

      // One renamed (a rename, too, needs the database free of sessions).
      const gamma = producers.gamma;
      gamma.stop = true;
      await gamma.done;
      await cluster.query('ALTER DATABASE gamma RENAME TO gamma_renamed', [], 'postgres');
      gammaName = 'gamma_renamed';
      producers.gamma = produce(cluster, () => gammaName, 'gamma');
      producers.gamma.next = gamma.next;  // its keys go on where they were
      const earlierGamma = gamma.committed;
      await sleep(1000);

      // The server crashes and restarts.
      await cluster.restart({ mode: 'immediate' });
      await sleep(1500);

      const results = {};
      for (const db of ['alpha', 'gamma', 'delta']) results[db] = await producers[db].finish();
      results.gamma.committed.unshift(...earlierGamma);
      for (const db of ['alpha', 'gamma', 'delta']) {
        const { committed, unknown } = results[db];
        await sinks[db].waitForIds(committed, { timeout: 90000 });
        t.diagnostic(`${db}: ${committed.length} committed, all arrived; ${sinks[db].requests.length - sinks[db].ids().size} ` +
                     `repeated; ${unknown.length} with unknown outcome`);
        assert.ok(committed.length > 100, `${db} produced`);
      }
      // None crossing: each receiver got its own database's events only.
      for (const [db, sink] of Object.entries(sinks)) {
        const from = new Set(sink.requests.map((r) => JSON.parse(r.body).db));
        assert.deepEqual([...from], [db], `${db}'s receiver got events of ${[...from]}`);
        assert.ok(sink.requests.every((r) => r.verified), `${db}: signed`);
      }
      assert.ok(sinks.beta.requests.length > 0, 'beta delivered before it was dropped');
      // Key order: each key's events first arrived in enqueue order.
      for (const db of ['alpha', 'gamma', 'delta']) {
        const firsts = new Map();
        for (const r of sinks[db].requests) {
          const { key, n } = JSON.parse(r.body);
          if (!firsts.has(key)) firsts.set(key, []);
          const seen = firsts.get(key);
          if (!seen.includes(n)) seen.push(n);
        }
        for (const [key, ns] of firsts) assert.deepEqual(ns, [...ns].sort((x, y) => x - y), `${db} ${key} in order`);
      }
      // Served after it all: the three that remain, each with its workers.
      await waitFor(async () => {
        const w = await workersByDatabase(cluster);
        return w.alpha === 2 && w.gamma_renamed === 2 && w.delta === 2 && !w.beta && !w.gamma;
      }, { message: 'two workers in each remaining database' });
    } finally {
      await cluster.destroy();
      for (const sink of Object.values(sinks)) await sink.close();
    }
  });
});
