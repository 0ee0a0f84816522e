// Key pipelines (issue 16): a claim brings a keyed delivery together with
// the ones behind it in its key, and the worker sends each the moment its
// predecessor is acknowledged. These tests hold the pipeline to the
// guarantees of per-key order: one request of a key at a time, in seq order,
// a failure holding back what follows until it is delivered, a dead one
// letting the rest go, and a killed worker losing nothing, keeping the
// order and repeating no more than it had not yet recorded.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import { startCluster, waitFor } from '../lib/cluster.mjs';
import { startSink, TEST_SECRET } from '../lib/sink.mjs';

// Watches one key's stream at the receiver: a request for n is in order when
// every m < n was acknowledged (2xx) before it; a request for an n already
// acknowledged is a duplicate.
function orderWatcher() {
  const w = { acked: new Set(), next: 0, violations: [], duplicates: 0, inFlight: 0, maxInFlight: 0 };
  w.request = (n) => {
    if (w.acked.has(n)) w.duplicates++;
    else if (n !== w.next) w.violations.push(`request for ${n} while ${w.next} is not acknowledged`);
  };
  w.ack = (n) => {
    w.acked.add(n);
    while (w.acked.has(w.next)) w.next++;
  };
  return w;
}

async function enqueueKey(cluster, key, count, from = 0) {
  await cluster.query(
    `SELECT outbox.enqueue('hot', jsonb_build_object('n', n), key => $1)
     FROM generate_series($2::int, $3::int - 1) AS n`, [key, from, from + count]);
}

describe('key pipelines', () => {
  let cluster;
  let sink;
  let watch;
  let respond = () => ({ status: 204 });

  before(async () => {
    sink = await startSink({
      secrets: [TEST_SECRET],
      respond: async (r) => {
        const { n } = JSON.parse(r.body);
        watch.inFlight++;
        watch.maxInFlight = Math.max(watch.maxInFlight, watch.inFlight);
        watch.request(n);
        const answer = await respond(n);
        watch.inFlight--;
        if (answer.status < 300) watch.ack(n);
        return answer;
      },
    });
    cluster = await startCluster({
      conf: {
        'outbox.url': sink.url, 'outbox.secret': TEST_SECRET, 'outbox.workers': 2,
        'outbox.retry_base': '20ms', 'outbox.retry_max': '100ms', 'outbox.max_attempts': 50,
        'outbox.request_timeout': '2s', 'outbox.lease': '1s',
        restart_after_crash: 'on',
      },
    });
    await waitFor(async () => (await cluster.workerPids()).length === 2, { message: 'two workers' });
  });
  after(async () => {
    await cluster?.destroy();
    await sink?.close();
  });

  async function drained(key, total) {
    await waitFor(async () => {
      const { rows } = await cluster.query(
        `SELECT count(*) FILTER (WHERE state = 'pending')::int AS pending, count(*)::int AS n
         FROM outbox.deliveries WHERE key = $1`, [key]);
      return rows[0].n === total && rows[0].pending === 0;
    }, { timeout: 90000, message: `${total} deliveries of ${key} finished` });
  }
  async function setPaused(on) {
    await cluster.query(`ALTER SYSTEM SET outbox.paused = ${on ? 'on' : 'off'}`);
    await cluster.query('SELECT pg_reload_conf()');
  }

  test('one key\'s backlog is sent one request at a time, in order, in pipelines', async (t) => {
    watch = orderWatcher();
    sink.clear();
    respond = () => ({ status: 204 });
    await setPaused(true);
    await enqueueKey(cluster, 'hot-1', 2000);
    await setPaused(false);
    await drained('hot-1', 2000);
    assert.deepEqual(watch.violations, []);
    assert.equal(watch.maxInFlight, 1, 'one request of the key at a time');
    assert.equal(watch.next, 2000);
    // Pipelines: far fewer claims than events. Each delivery was claimed
    // with a head whose attempt came first: attempts are 1 everywhere.
    const { rows } = await cluster.query(
      "SELECT max(attempts)::int AS max_attempts, count(*)::int AS n FROM outbox.deliveries WHERE key = 'hot-1'");
    assert.equal(rows[0].max_attempts, 1);
    t.diagnostic(`${sink.requests.length} requests, ${watch.duplicates} duplicates`);
    assert.equal(watch.duplicates, 0);
  });

  test('a failing delivery holds back the rest of its pipeline until it is delivered', async () => {
    watch = orderWatcher();
    sink.clear();
    const failures = new Map([[10, 3], [500, 2], [501, 1]]);  // n -> failures left
    respond = (n) => {
      const left = failures.get(n) ?? 0;
      if (left > 0) {
        failures.set(n, left - 1);
        return { status: 503 };
      }
      return { status: 204 };
    };
    await enqueueKey(cluster, 'hot-2', 1000);
    await drained('hot-2', 1000);
    assert.deepEqual(watch.violations, []);
    assert.equal(watch.next, 1000);
    assert.equal(watch.maxInFlight, 1);
    // The deliveries behind a failure were handed back without counting an
    // attempt: only the failing ones have more than one.
    const { rows } = await cluster.query(`
      SELECT (payload->>'n')::int AS n, d.attempts FROM outbox.deliveries AS d
      JOIN outbox.events AS e ON e.id = d.event_id WHERE d.key = 'hot-2' AND d.attempts > 1 ORDER BY 1`);
    assert.deepEqual(rows.map((r) => [r.n, r.attempts]), [[10, 4], [500, 3], [501, 2]]);
  });

  test('a dead delivery lets the rest of its key go', async () => {
    watch = orderWatcher();
    sink.clear();
    await cluster.query("SELECT outbox.create_endpoint('strict', $1, '{strict}', max_attempts => 1)", [sink.url]);
    await cluster.query("SELECT outbox.disable_endpoint('default')");
    respond = (n) => (n === 7 ? { status: 500 } : { status: 204 });
    await cluster.query(
      `SELECT outbox.enqueue('strict', jsonb_build_object('n', n), key => 'hot-3') FROM generate_series(0, 299) AS n`);
    await drained('hot-3', 300);
    const { rows } = await cluster.query(
      "SELECT state, count(*)::int AS n FROM outbox.deliveries WHERE key = 'hot-3' GROUP BY 1 ORDER BY 1");
    assert.deepEqual(rows, [{ state: 'dead', n: 1 }, { state: 'delivered', n: 299 }]);
    // 7 was never acknowledged; everything after it went in order.
    assert.deepEqual(watch.violations.filter((v) => !v.includes('while 7 ')), []);
    assert.equal(watch.acked.size, 299);
    await cluster.query("SELECT outbox.enable_endpoint('default')");
    await cluster.query("SELECT outbox.drop_endpoint('strict')");
  });

  test('a worker killed in the middle of a hot key loses nothing, keeps the order, and repeats little', async (t) => {
    watch = orderWatcher();
    sink.clear();
    respond = () => ({ status: 204 });
    await setPaused(true);
    await enqueueKey(cluster, 'hot-4', 4000);
    const { rows: ids } = await cluster.query("SELECT array_agg(id) AS ids FROM outbox.events WHERE key = 'hot-4'");
    await setPaused(false);
    await waitFor(() => watch.next > 500, { message: 'the pipeline under way' });
    const pids = await cluster.workerPids();
    for (const pid of pids) spawnSync('kill', ['-9', String(pid)]);
    await sink.waitForIds(ids[0].ids, { timeout: 90000 });
    await drained('hot-4', 4000);
    assert.deepEqual(watch.violations, []);
    assert.equal(watch.next, 4000);
    // What was repeated: results not recorded yet when the worker died (at
    // most a batch, outbox.batch_size, plus the request on the wire).
    t.diagnostic(`${sink.requests.length} requests for 4000 events: ${watch.duplicates} sent again after the kill`);
    assert.ok(watch.duplicates <= 101, `${watch.duplicates} duplicates`);
  });
});
