// What the launcher and the worker wait for, in pg_stat_activity: on
// PostgreSQL 17 and later they report custom wait events by name
// (OutboxLauncherMain, OutboxWorkerIdle, OutboxWorkerHttp); before 17 an
// extension's waits can only show as "Extension", so these tests are skipped.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { waitFor } from '../lib/cluster.mjs';
import { startWithReceiver } from '../lib/setup.mjs';

describe('custom wait events', () => {
  let env;
  let version;

  before(async () => {
    env = await startWithReceiver();
    version = Number((await env.cluster.query('SHOW server_version_num', [], 'postgres')).rows[0].server_version_num);
  });
  after(async () => env?.destroy());

  const unsupported = (t) => {
    if (version >= 170000) return false;
    t.skip(`PostgreSQL ${Math.floor(version / 10000)} has no custom wait events (17+); waits show as "Extension"`);
    return true;
  };

  // The wait events of the outbox processes, by backend type, once every
  // process of `types` waits on one of ours.
  async function waitEvents(types, want) {
    let last;
    await waitFor(async () => {
      const { rows } = await env.cluster.query(
        `SELECT backend_type, wait_event_type, wait_event FROM pg_stat_activity
         WHERE backend_type = ANY($1) ORDER BY backend_type`, [types], 'postgres');
      last = rows;
      return rows.length === types.length && rows.every((r) => want[r.backend_type] === r.wait_event);
    }, { timeout: 10000, message: `wait events ${JSON.stringify(want)} (last seen ${JSON.stringify(last)})` });
    return last;
  }

  test('an idle worker waits on OutboxWorkerIdle, the launcher on OutboxLauncherMain', async (t) => {
    if (unsupported(t)) return;
    const rows = await waitEvents(['outbox launcher', 'outbox worker'],
      { 'outbox launcher': 'OutboxLauncherMain', 'outbox worker': 'OutboxWorkerIdle' });
    for (const r of rows) assert.equal(r.wait_event_type, 'Extension');
  });

  test('a worker with a request in flight waits on OutboxWorkerHttp, then idle again', async (t) => {
    if (unsupported(t)) return;
    const { cluster, sink } = env;
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    sink.respond = async () => { await held; return { status: 204 }; };
    try {
      const { rows } = await cluster.query("SELECT outbox.enqueue('wait.event', '{}') AS id");
      await sink.waitForCount(1);
      await waitEvents(['outbox worker'], { 'outbox worker': 'OutboxWorkerHttp' });
      release();
      await waitFor(async () => (await cluster.query(
        'SELECT state FROM outbox.deliveries WHERE event_id = $1', [rows[0].id])).rows[0]?.state === 'delivered',
      { message: 'the delivery recorded' });
      await waitEvents(['outbox worker'], { 'outbox worker': 'OutboxWorkerIdle' });
    } finally {
      release();
      sink.respond = () => ({ status: 204 });
    }
  });
});
