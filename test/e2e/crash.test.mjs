// Nothing committed is lost: restarts, crashes of the whole server and of
// the worker alone, while a producer keeps enqueueing. The receiver counts
// distinct webhook-ids; duplicates are allowed (at least once) and printed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import { startCluster, waitFor } from '../lib/cluster.mjs';
import { startSink, TEST_SECRET } from '../lib/sink.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// OUTBOX_CRASH_SCALE=10 runs the long version: tens of thousands of events.
const scale = Number(process.env.OUTBOX_CRASH_SCALE || 1);

// Enqueues `batches` transactions of `perBatch` events, as fast as it can,
// riding out server restarts. Returns the ids of committed transactions
// (COMMIT answered) and of those whose outcome is unknown (the connection
// broke during COMMIT).
async function produce(cluster, { batches, perBatch, stop }) {
  const committed = [];
  const unknown = [];
  let client = null;
  for (let b = 0; b < batches && !stop.now; ) {
    try {
      if (!client) client = await cluster.client();
      await client.query('BEGIN');
      const { rows } = await client.query(
        "SELECT outbox.enqueue('load.event', jsonb_build_object('batch', $1::int, 'i', i), key => 'k' || (i % 7)) AS id FROM generate_series(1, $2::int) AS i",
        [b, perBatch]);
      const ids = rows.map((r) => r.id);
      try {
        await client.query('COMMIT');
        committed.push(...ids);
      } catch (err) {
        unknown.push(...ids);
        throw err;
      }
      b++;
    } catch {
      try { await client?.end(); } catch { /* already gone */ }
      client = null;
      await sleep(100);  // the server is restarting
    }
  }
  try { await client?.end(); } catch { /* gone */ }
  return { committed, unknown };
}

describe('crashes and restarts lose nothing', () => {
  let cluster;
  let sink;

  before(async () => {
    sink = await startSink({ secrets: [TEST_SECRET] });
    cluster = await startCluster({
      conf: {
        'outbox.url': sink.url,
        'outbox.secret': TEST_SECRET,
        'outbox.request_timeout': '2s',
        'outbox.lease': '1s',  // the worker uses at least request_timeout + 5 s
        restart_after_crash: 'on',
      },
    });
  });
  after(async () => {
    await cluster?.destroy();
    await sink?.close();
  });

  async function check(t, name, { committed, unknown }) {
    await sink.waitForIds(committed, { timeout: 60000 * scale });
    const ids = sink.ids();
    const extra = sink.requests.length - ids.size;
    const unknownArrived = unknown.filter((id) => ids.has(id)).length;
    t.diagnostic(`${name}: ${committed.length} committed, all arrived; ${extra} duplicate requests; ` +
      `${unknownArrived} of ${unknown.length} with unknown commit outcome arrived`);
    // Every delivery row ends delivered.
    await waitFor(async () => (await cluster.counts()).pending === 0, { timeout: 60000, message: 'no pending deliveries' });
    const { rows } = await cluster.query(
      "SELECT count(*)::int AS n FROM outbox.deliveries WHERE event_id = ANY($1) AND state = 'delivered'", [committed]);
    assert.equal(rows[0].n, committed.length);
  }

  test('pg_ctl restart in the middle of a stream', async (t) => {
    sink.clear();
    const stop = { now: false };
    const producing = produce(cluster, { batches: 200 * scale, perBatch: 10, stop });
    await waitFor(() => sink.requests.length > 200, { message: 'delivery under way' });
    await cluster.restart({ mode: 'fast' });
    const result = await producing;
    await check(t, 'restart', result);
  });

  test('repeated immediate stops (crash) in the middle of a stream', async (t) => {
    sink.clear();
    const stop = { now: false };
    const producing = produce(cluster, { batches: 300 * scale, perBatch: 10, stop });
    for (let round = 0; round < 3 * scale; round++) {
      const seen = sink.requests.length;
      await waitFor(() => sink.requests.length > seen + 100, { message: 'delivery under way' });
      await cluster.stop({ mode: 'immediate' });
      await cluster.start();
    }
    const result = await producing;
    await check(t, 'immediate stops', result);
  });

  test('SIGKILL of the worker: the server recovers and the worker resumes', async (t) => {
    sink.clear();
    const stop = { now: false };
    const producing = produce(cluster, { batches: 200 * scale, perBatch: 10, stop });
    await waitFor(() => sink.requests.length > 100, { message: 'delivery under way' });
    const [pid] = await cluster.workerPids();
    assert.ok(pid, 'a worker is running');
    spawnSync('kill', ['-9', String(pid)]);
    const result = await producing;
    await check(t, 'worker killed', result);
    const pids = await waitFor(async () => {
      const now = await cluster.workerPids();
      return now.length === 1 && now[0] !== pid ? now : null;
    }, { message: 'a new worker' });
    assert.notEqual(pids[0], pid);
  });

  test('pg_terminate_backend of the worker: it is restarted, nothing is lost', async () => {
    sink.clear();
    const [pid] = await cluster.workerPids();
    const { rows } = await cluster.query(
      "SELECT array_agg(outbox.enqueue('t', jsonb_build_object('i', i))) AS ids FROM generate_series(1, 50) AS i");
    await cluster.query('SELECT pg_terminate_backend($1)', [pid]);
    await sink.waitForIds(rows[0].ids);
    await waitFor(async () => {
      const now = await cluster.workerPids();
      return now.length === 1 && now[0] !== pid;
    }, { message: 'the launcher to start a new worker' });
    assert.match(cluster.log(), /outbox: worker 0 exited; restarting it/);
  });
});
