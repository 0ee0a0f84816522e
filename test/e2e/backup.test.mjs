// Backup and restore: a database with endpoints (own secrets, a rotation in
// progress, one disabled), delivered, retrying, dead, parked and
// undispatched deliveries is dumped (pg_dump -Fc, plain, pg_dumpall) and
// restored into other clusters. Everything comes back; after the restore
// every pending event is delivered, nothing delivered is sent again, and a
// new event for a restored key comes after the restored ones.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { startCluster, waitFor } from '../lib/cluster.mjs';
import { startSink, TEST_SECRET } from '../lib/sink.mjs';

const KEYS = ['k1', 'k2'];

// What a restore must bring back, as text, for comparing two databases.
async function snapshot(cluster) {
  const rows = async (sql) => (await cluster.query(sql, [], 'app')).rows;
  return {
    endpoints: await rows(`SELECT id, name, url, topics, headers, timeout::text, enabled, disabled_reason,
                                  disabled_at::text, created_at::text, updated_at::text
                           FROM outbox.endpoints ORDER BY id`),
    secrets: await rows(`SELECT endpoint_id, secret, created_at::text, expires_at::text
                         FROM outbox.endpoint_secrets ORDER BY endpoint_id, created_at`),
    events: await rows(`SELECT id, seq, topic, key, payload, headers, created_at::text
                        FROM outbox.events ORDER BY seq`),
    deliveries: await rows(`SELECT event_id, endpoint_id, seq, key, state, attempts, next_attempt_at::text,
                                   last_attempt_at::text, last_status, last_error, finished_at::text
                            FROM outbox.deliveries ORDER BY seq, endpoint_id`),
  };
}

describe('backup and restore', () => {
  let source;
  const sinks = {};
  const billingSecrets = [];  // the billing receiver verifies with each (the array is read per request)
  let billingFails = false;
  const billingOk = [];  // ids the billing receiver answered 2xx, in order
  const events = { delivered: [], retrying: [], undispatched: [], dead: [] };
  const keyOf = new Map();
  let before_;  // the source database as dumped
  let notDispatched;  // ids of its events it had not dispatched

  async function enqueue(cluster, topic, key, n) {
    const ids = [];
    for (let i = 0; i < n; i++) {
      const k = key ?? KEYS[i % KEYS.length];
      const { rows } = await cluster.query('SELECT outbox.enqueue($1, $2::jsonb, key => $3) AS id',
        [topic, JSON.stringify({ i, k }), k], 'app');
      ids.push(rows[0].id);
      keyOf.set(rows[0].id, k);
    }
    return ids;
  }
  const deliveryCount = async (cluster, where) =>
    Number((await cluster.query(`SELECT count(*) AS n FROM outbox.deliveries d
                                 JOIN outbox.endpoints ep ON ep.id = d.endpoint_id WHERE ${where}`, [], 'app')).rows[0].n);

  before(async () => {
    sinks.main = await startSink({ secrets: [TEST_SECRET] });
    sinks.billing = await startSink({
      secrets: billingSecrets,
      respond: (r) => {
        if (billingFails) return { status: 500 };
        billingOk.push(r.id);
        return { status: 204 };
      },
    });
    sinks.audit = await startSink({ respond: () => ({ status: 500 }) });
    source = await startCluster({
      database: 'app',
      conf: { 'outbox.url': sinks.main.url, 'outbox.secret': TEST_SECRET, 'outbox.max_attempts': 1,
              'outbox.retry_base': '2s', 'outbox.retry_max': '2s' },
    });

    // Dead: one attempt allowed while the audit receiver fails.
    await source.query("SELECT outbox.create_endpoint('audit', $1, topics => '{audit.*}')", [sinks.audit.url], 'app');
    events.dead = await enqueue(source, 'audit.failed', 'a', 3);
    await waitFor(async () => await deliveryCount(source, "ep.name = 'audit' AND d.state = 'dead'") === 3,
      { message: 'three dead deliveries' });
    await source.reload({ 'outbox.max_attempts': 100 });

    // Delivered everywhere.
    const created = await source.query("SELECT outbox.create_endpoint('billing', $1, topics => '{order.*}') AS s",
      [sinks.billing.url], 'app');
    billingSecrets.push(created.rows[0].s);
    events.delivered = await enqueue(source, 'order.created', null, 6);
    await waitFor(async () => await deliveryCount(source, "d.state <> 'delivered'") === 3,  // the dead ones
      { message: 'the first events delivered' });

    // Retrying at billing (its key heads fail, the rest are parked behind them).
    billingFails = true;
    events.retrying = await enqueue(source, 'order.created', null, 6);
    await sinks.main.waitForIds(events.retrying);
    await waitFor(async () => await deliveryCount(source, "ep.name = 'billing' AND d.attempts > 0 AND d.state = 'pending'") === 2,
      { message: 'both key heads failing at billing' });

    // Not dispatched: the worker is paused.
    await source.reload({ 'outbox.paused': 'on' });
    events.undispatched = await enqueue(source, 'order.created', null, 6);
    const rotated = await source.query("SELECT outbox.rotate_secret('billing', grace => '1 hour') AS s", [], 'app');
    billingSecrets.push(rotated.rows[0].s);
    await source.query("SELECT outbox.disable_endpoint('audit', reason => 'maintenance')", [], 'app');
    await source.query("SELECT outbox.disable_endpoint('default', reason => 'kept disabled')", [], 'app');
    await source.query("SELECT outbox.enable_endpoint('default')", [], 'app');
    before_ = await snapshot(source);
    // What the dumped database has not dispatched: the last events, and the
    // operational events the disabling announced meanwhile.
    notDispatched = (await source.query(`SELECT e.id FROM outbox.events AS e, outbox.dispatch_state AS s
                                         WHERE NOT pg_visible_in_snapshot(e.txid, s.done_snapshot)`, [], 'app')).rows.map((r) => r.id);
    assert.ok(events.undispatched.every((id) => notDispatched.includes(id)));
    assert.equal(before_.deliveries.filter((d) => events.undispatched.includes(d.event_id)).length, 0,
      'the last events are not dispatched when dumped');
    billingFails = false;
  });

  after(async () => {
    await source?.destroy();
    for (const sink of Object.values(sinks)) await sink.close();
  });

  test('pg_dump -Fc / pg_restore into another cluster: pending events are delivered once, nothing delivered is sent again, key order holds', async () => {
    const dump = path.join(source.dir, 'app.dump');
    source.run('pg_dump', ['-d', 'app', '-Fc', '-f', dump]);
    const mainBefore = new Map([...sinks.main.ids()].map((id) => [id, sinks.main.byId(id).length]));
    const billingBefore = sinks.billing.requests.length;

    const target = await startCluster({
      database: 'app', createExtension: false,
      conf: { 'outbox.url': sinks.main.url, 'outbox.secret': TEST_SECRET },
    });
    try {
      const restore = target.run('pg_restore', ['-d', 'app', dump]);
      assert.equal(restore.status, 0, restore.stderr);
      // A new event for keys that restored events have: it must come after them.
      const late = await enqueue(target, 'order.created', null, 2);

      const pendingBefore = [...events.retrying, ...events.undispatched];
      await waitFor(() => [...pendingBefore, ...late].every((id) => billingOk.includes(id)),
        { message: 'every pending billing delivery, and the new events, answered 2xx' });
      await sinks.main.waitForIds([...events.undispatched, ...late]);
      await waitFor(async () => (await target.counts()).pending === 0, { message: 'all recorded as delivered' });

      // Nothing delivered before the dump was sent again; each pending one once.
      for (const id of [...events.delivered, ...events.retrying]) {
        assert.equal(sinks.main.byId(id).length, mainBefore.get(id), `default endpoint got ${id} again`);
      }
      for (const id of [...events.undispatched, ...late]) assert.equal(sinks.main.byId(id).length, 1);
      const billingAfter = sinks.billing.requests.slice(billingBefore);
      assert.deepEqual(billingAfter.map((r) => r.id).sort(), [...pendingBefore, ...late].sort(),
        'billing got exactly the pending events and the new ones, once each');
      assert.ok(billingAfter.every((r) => r.verifiedWith.length === 2 && r.verified),
        'signed with both secrets of the rotation in progress');

      // Per-key order across the restore, at both endpoints.
      const all = [...events.delivered, ...events.retrying, ...events.undispatched, ...late];
      for (const key of KEYS) {
        const expected = all.filter((id) => keyOf.get(id) === key);
        assert.deepEqual(billingOk.filter((id) => keyOf.get(id) === key), expected, `billing order of ${key}`);
        const arrivals = sinks.main.requests.map((r) => r.id).filter((id) => keyOf.get(id) === key);
        assert.deepEqual([...new Set(arrivals)], expected, `default endpoint order of ${key}`);
      }

      // Dead deliveries, the disabled endpoint and the numbering came along.
      assert.equal(await deliveryCount(target, "ep.name = 'audit' AND d.state = 'dead'"), 3);
      const audit = (await target.query("SELECT enabled, disabled_reason FROM outbox.endpoint_status WHERE name = 'audit'", [], 'app')).rows[0];
      assert.deepEqual(audit, { enabled: false, disabled_reason: 'maintenance' });
      const seqs = (await target.query('SELECT seq FROM outbox.events WHERE id = ANY($1) ORDER BY seq', [late], 'app')).rows;
      assert.ok(seqs.every((r) => Number(r.seq) > Math.max(...before_.events.map((e) => Number(e.seq)))),
        'new events are numbered after the restored ones');
    } finally {
      await target.destroy();
    }
  });

  // Paused targets: what was restored can be compared row by row.
  for (const { format, preload } of [{ format: 'plain', preload: false }, { format: 'pg_dumpall', preload: true }]) {
    test(`${format}${preload ? '' : ', into a server without the library preloaded'}: every row comes back; events are placed for dispatch`, async () => {
      const file = path.join(source.dir, `${format}.sql`);
      if (format === 'plain') source.run('pg_dump', ['-d', 'app', '-f', file]);
      else source.run('pg_dumpall', ['-f', file]);
      const target = await startCluster({
        database: 'app', preload, createDatabase: format === 'plain', createExtension: false,
        conf: { 'outbox.paused': 'on' },
      });
      try {
        const restore = target.run('psql', ['-X', '-v', 'ON_ERROR_STOP=0', '-d', format === 'plain' ? 'app' : 'postgres', '-f', file]);
        assert.equal(restore.status, 0, restore.stderr);
        if (!preload) assert.match(restore.stderr, /outbox is not in shared_preload_libraries/, 'the restore says so');
        assert.deepEqual(await snapshot(target), before_);
        const { rows } = await target.query(`SELECT id, txid = '1' AS was_dispatched, txid >= '4611686018427387904' AS held
                                             FROM outbox.events`, [], 'app');
        for (const row of rows) {
          assert.equal(row.held, false, 'no event is left waiting for the dispatch state');
          assert.equal(row.was_dispatched, !notDispatched.includes(row.id), `event ${row.id}`);
        }
        // The undispatched ones are dispatched once the worker runs.
        if (preload) {
          await target.reload({ 'outbox.paused': 'off', 'outbox.url': '' });
          await waitFor(async () => (await target.query('SELECT count(*)::int AS n FROM outbox.deliveries WHERE event_id = ANY($1)',
            [events.undispatched], 'app')).rows[0].n >= events.undispatched.length,
          { message: 'the undispatched events dispatched (to billing)' });
        }
      } finally {
        await target.destroy();
      }
    });
  }
});

// pg_restore loads outbox.endpoint_secrets after outbox.endpoints (the
// foreign key orders them), each in a transaction of its own, with the
// worker running. A worker that loaded the endpoints in between signed the
// restored deliveries without the restored secrets (a clean-clone CI run
// of the test above, on PostgreSQL 18). Here the secrets change behind the
// worker's back the same way, by plain DML, the endpoints' rows untouched.
describe('secrets restored after their endpoints', () => {
  test('the worker signs with secrets written without touching the endpoints row, and holds deliveries while an endpoint has none', async () => {
    const restored = `whsec_${Buffer.from('restored secret, 24 bytes!'.slice(0, 24)).toString('base64')}`;
    const secrets = [];
    const sink = await startSink({ secrets });
    const cluster = await startCluster({ database: 'app', conf: { 'outbox.url': '' } });
    try {
      const created = await cluster.query("SELECT outbox.create_endpoint('billing', $1) AS s", [sink.url], 'app');
      secrets.push(created.rows[0].s);
      const send = async () => (await cluster.query("SELECT outbox.enqueue('order.created', '{}')::text AS id", [], 'app')).rows[0].id;
      const first = await send();
      await sink.waitForIds([first]);
      assert.equal(sink.byId(first)[0].verified, true, 'signed with the created secret');

      // Between the two tables of a restore the endpoint has no secret: its
      // deliveries wait, they do not go out unsigned.
      await cluster.query('DELETE FROM outbox.endpoint_secrets', [], 'app');
      const second = await send();
      await waitFor(async () => (await cluster.query(`SELECT count(*)::int AS n FROM outbox.deliveries
                                                      WHERE event_id = $1`, [second], 'app')).rows[0].n === 1,
        { message: 'the delivery made' });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal(sink.byId(second).length, 0, 'nothing sent without a secret');
      assert.match(cluster.log(), /endpoint "billing" has no signing secret: its deliveries wait/);

      await cluster.query(`INSERT INTO outbox.endpoint_secrets (endpoint_id, secret)
                           SELECT id, '${restored}' FROM outbox.endpoints WHERE name = 'billing'`, [], 'app');
      secrets.splice(0, secrets.length, restored);
      const third = await send();
      await sink.waitForIds([second, third]);
      for (const id of [second, third]) {
        const request = sink.byId(id)[0];
        assert.equal(request.verified, true, `signed with the restored secret (${request.error})`);
      }
    } finally {
      await cluster.destroy();
      await sink.close();
    }
  });
});
