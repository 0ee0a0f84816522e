// pg_upgrade from an older server with a backlog: delivered, retrying
// (failed attempts, parked followers of their key), dead and undispatched
// deliveries. Afterwards every committed event is delivered, in key order,
// nothing delivered before is sent again, and the dead stay dead.
//
// Needs the extension built and installed for both servers: the older
// one's programs are named by OUTBOX_UPGRADE_FROM (a bindir), as .ci/run
// does when it runs the suite on PostgreSQL 18 after 15.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { forgetAttributeVersions, pgUpgrade, startCluster, waitFor } from '../lib/cluster.mjs';
import { startSink, TEST_SECRET } from '../lib/sink.mjs';

const from = process.env.OUTBOX_UPGRADE_FROM;
const KEYS = ['k1', 'k2', 'k3'];

describe('pg_upgrade', () => {
  test('a backlog survives pg_upgrade to this server', { skip: from ? false : 'set OUTBOX_UPGRADE_FROM to an older server\'s bindir (.ci/run does)' }, async () => {
    let billingFails = false;
    const billingOk = [];
    const main = await startSink({ secrets: [TEST_SECRET] });
    const billing = await startSink({
      respond: (r) => {
        if (billingFails) return { status: 500 };
        billingOk.push(r.id);
        return { status: 204 };
      },
    });
    const audit = await startSink({ respond: () => ({ status: 500 }) });
    const old = await startCluster({
      bindir: from,
      conf: { 'outbox.url': main.url, 'outbox.secret': TEST_SECRET, 'outbox.max_attempts': 1,
              'outbox.retry_base': '1s', 'outbox.retry_max': '1s' },
    });
    let upgraded;
    const keyOf = new Map();
    const enqueue = async (topic, n, key) => {
      const ids = [];
      for (let i = 0; i < n; i++) {
        const k = key ?? KEYS[i % KEYS.length];
        const { rows } = await old.query('SELECT outbox.enqueue($1, $2::jsonb, key => $3) AS id', [topic, JSON.stringify({ i }), k]);
        ids.push(rows[0].id);
        keyOf.set(rows[0].id, k);
      }
      return ids;
    };
    const states = async (cluster) => (await cluster.query(
      `SELECT ep.name, d.state, count(*)::int AS n FROM outbox.deliveries d JOIN outbox.endpoints ep ON ep.id = d.endpoint_id
       GROUP BY 1, 2 ORDER BY 1, 2`)).rows;
    try {
      const version = (await old.query('SHOW server_version_num')).rows[0].server_version_num;
      await old.query("SELECT outbox.create_endpoint('audit', $1, topics => '{audit.*}')", [audit.url]);
      const dead = await enqueue('audit.failed', 2, 'a');
      await waitFor(async () => (await states(old)).some((r) => r.name === 'audit' && r.state === 'dead' && r.n === 2),
        { message: 'dead deliveries' });
      await old.reload({ 'outbox.max_attempts': 100 });
      await old.query("SELECT outbox.create_endpoint('billing', $1, topics => '{order.*}')", [billing.url]);
      const delivered = await enqueue('order.created', 6);
      await waitFor(() => delivered.every((id) => billingOk.includes(id)) && delivered.every((id) => main.byId(id).length),
        { message: 'the first events delivered' });
      billingFails = true;
      const retrying = await enqueue('order.created', 9);
      await main.waitForIds(retrying);
      await waitFor(async () => Number((await old.query(
        "SELECT count(*) AS n FROM outbox.deliveries WHERE endpoint_id <> 0 AND state = 'pending' AND attempts > 0")).rows[0].n) >= 3,
      { message: 'each key head failing at billing' });
      await old.reload({ 'outbox.paused': 'on' });
      const undispatched = await enqueue('order.created', 6);
      const mainBefore = main.requests.length;
      await forgetAttributeVersions(old, ['postgres', old.database]);
      await old.stop();

      billingFails = false;
      upgraded = await pgUpgrade(old, { conf: { 'outbox.paused': 'off' } });
      await upgraded.start();
      assert.notEqual((await upgraded.query('SHOW server_version_num')).rows[0].server_version_num, version, 'a newer server');

      const pending = [...retrying, ...undispatched];
      await waitFor(() => pending.every((id) => billingOk.includes(id)), { message: 'every pending event delivered to billing' });
      await main.waitForIds(undispatched);
      await waitFor(async () => (await upgraded.counts()).pending === 0, { message: 'all recorded' });

      const all = [...delivered, ...retrying, ...undispatched];
      for (const key of KEYS) {
        assert.deepEqual(billingOk.filter((id) => keyOf.get(id) === key), all.filter((id) => keyOf.get(id) === key), `order of ${key}`);
      }
      assert.equal(new Set(billingOk).size, billingOk.length, 'no event answered 2xx twice at billing');
      assert.deepEqual(main.requests.slice(mainBefore).map((r) => r.id).sort(), [...undispatched].sort(),
        'the default endpoint got only what it had not been sent');
      assert.ok(main.requests.every((r) => r.verified), 'signed');
      const after = await states(upgraded);
      assert.deepEqual(after.filter((r) => r.name === 'audit'), [{ name: 'audit', state: 'dead', n: dead.length }]);
    } finally {
      await (upgraded ?? old).destroy();
      if (upgraded) await old.destroy();
      for (const sink of [main, billing, audit]) await sink.close();
    }
  });
});
