// The single-database guarantees on a server that serves several: a
// promoted standby, a server restored from pg_dumpall and a server upgraded
// with pg_upgrade (when OUTBOX_UPGRADE_FROM names an older server's bindir,
// as .ci/run does on 18) serve every database that has the extension,
// without being told which. Each
// database's backlog reaches its own receiver only, every event at least
// once (exactly once after a restore from a paused source), and each key's
// events first arrive in the order they were enqueued. (The immediate
// restart while databases come and go is databases_run.test.mjs.)
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';

import { forgetAttributeVersions, pgUpgrade, startStandby, waitFor } from '../lib/cluster.mjs';
import { createDatabase, enqueue, startServingAll } from '../lib/databases.mjs';
import { startSink, TEST_SECRET } from '../lib/sink.mjs';

const DATABASES = ['shop', 'billing'];
const upgradeFrom = process.env.OUTBOX_UPGRADE_FROM;

// Three transactions per key and database, keys interleaved, so that a
// key's order is a real claim. Returns { ids, byKey: Map key -> ids }.
async function backlog(cluster, database, { keys = 4, rounds = 3, perKey = 5 } = {}) {
  const ids = [];
  const byKey = new Map();
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < keys; k++) {
      const key = `${database}-k${k}`;
      const made = await enqueue(cluster, database, perKey, { key, from: round * perKey });
      ids.push(...made);
      byKey.set(key, [...(byKey.get(key) ?? []), ...made]);
    }
  }
  return { ids, byKey };
}

// Every request a receiver got came from its own database; per key, first
// arrivals are in enqueue order.
function assertOwnAndOrdered(sink, database, { ids, byKey }) {
  for (const r of sink.requests) assert.equal(JSON.parse(r.body).db, database, `${database}'s receiver got another's event`);
  assert.ok(sink.requests.every((r) => r.verified), `${database}: every request verifies`);
  const first = [...new Set(sink.requests.map((r) => r.id))];
  const wanted = new Set(ids);
  for (const [key, expected] of byKey) {
    const inKey = new Set(expected);
    assert.deepEqual(first.filter((id) => wanted.has(id) && inKey.has(id)), expected, `${database}: order of ${key}`);
  }
}

// Both databases with their own receivers (into `sinks`, by name, so that
// the caller closes what was started even when this fails), each having
// delivered a few events (so that each has dispatch state).
async function startDatabases(cluster, sinks) {
  for (const db of DATABASES) {
    sinks[db] = await startSink({ secrets: [TEST_SECRET] });
    await createDatabase(cluster, db, { sink: sinks[db] });
  }
  for (const db of DATABASES) await sinks[db].waitForIds(await enqueue(cluster, db, 5, { topic: 'warmup' }));
}

// Pauses the server and leaves a backlog in each database, the receivers
// cleared. Returns what was made, by database.
async function pausedBacklogs(cluster, sinks) {
  await cluster.reload({ 'outbox.paused': 'on' });
  for (const db of DATABASES) sinks[db].clear();
  const made = {};
  for (const db of DATABASES) made[db] = await backlog(cluster, db);
  return made;
}

// Each database's backlog arrives at its own receiver, in key order, each
// event once.
async function assertDeliveredOnce(sinks, made) {
  for (const db of DATABASES) await sinks[db].waitForIds(made[db].ids, { timeout: 60000 });
  for (const db of DATABASES) {
    assertOwnAndOrdered(sinks[db], db, made[db]);
    assert.equal(sinks[db].requests.length, made[db].ids.length, `${db}: each pending event sent once`);
  }
}

describe('several databases: failover and restore', () => {
  test('a promoted standby serves every database that has the extension, each backlog in key order', async (t) => {
    const primary = await startServingAll({ conf: { 'outbox.workers': 1 } });
    let standby;
    const sinks = {};
    try {
      await startDatabases(primary, sinks);
      // Both databases delivered before the standby is made.
      standby = await startStandby(primary);
      const made = await pausedBacklogs(primary, sinks);
      const lsn = (await primary.query('SELECT pg_current_wal_lsn() AS lsn')).rows[0].lsn;
      await waitFor(async () => (await standby.query('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [lsn])).rows[0].ok,
        { message: `the standby to replay up to ${lsn}` });
      assert.deepEqual(await standby.workerPids(), [], 'no worker on the standby');

      await primary.stop({ mode: 'immediate' });
      const promotedAt = Date.now();
      await standby.promote();
      for (const db of DATABASES) await sinks[db].waitForIds(made[db].ids, { timeout: 60000 });
      t.diagnostic(`both backlogs delivered ${Date.now() - promotedAt} ms after promotion`);
      for (const db of DATABASES) assertOwnAndOrdered(sinks[db], db, made[db]);
      for (const db of DATABASES) {
        await waitFor(async () => (await standby.query(
          "SELECT count(*)::int AS n FROM outbox.deliveries WHERE state <> 'delivered'", [], db)).rows[0].n === 0,
        { message: `${db}: every delivery recorded as delivered on the promoted standby` });
      }
    } finally {
      await standby?.destroy();
      await primary.destroy();
      for (const s of Object.values(sinks)) await s.close();
    }
  });

  test('pg_dumpall into another server: every database served there, each pending event delivered once, in key order', async () => {
    const source = await startServingAll({ conf: { 'outbox.workers': 1 } });
    let target;
    const sinks = {};
    try {
      await startDatabases(source, sinks);
      // Paused: what the dump holds is pending, and only the target sends it.
      const made = await pausedBacklogs(source, sinks);

      const file = path.join(source.dir, 'all.sql');
      source.run('pg_dumpall', ['-f', file]);
      target = await startServingAll({ conf: { 'outbox.workers': 1 } });
      const restore = target.run('psql', ['-X', '-v', 'ON_ERROR_STOP=0', '-d', 'postgres', '-f', file]);
      assert.equal(restore.status, 0, restore.stderr);
      await assertDeliveredOnce(sinks, made);
    } finally {
      await target?.destroy();
      await source.destroy();
      for (const s of Object.values(sinks)) await s.close();
    }
  });

  test('pg_upgrade of a server with several databases: each backlog delivered once, in key order',
    { skip: upgradeFrom ? false : 'set OUTBOX_UPGRADE_FROM to an older server\'s bindir (.ci/run does)' }, async () => {
      const old = await startServingAll({ bindir: upgradeFrom, conf: { 'outbox.workers': 1 } });
      let upgraded;
      const sinks = {};
      try {
        await startDatabases(old, sinks);
        const made = await pausedBacklogs(old, sinks);
        await forgetAttributeVersions(old, ['postgres', ...DATABASES]);
        await old.stop();

        upgraded = await pgUpgrade(old, { conf: { 'outbox.paused': 'off' } });
        await upgraded.start();
        await assertDeliveredOnce(sinks, made);
      } finally {
        await (upgraded ?? old).destroy();
        if (upgraded) await old.destroy();
        for (const s of Object.values(sinks)) await s.close();
      }
    });
});
