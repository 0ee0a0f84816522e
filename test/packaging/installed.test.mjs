// The library under test as installed (by the Debian package, or by pgxn
// install), with the server whose pg_config is first on PATH: a cluster
// with it preloaded delivers a committed event as a signed webhook, and the
// library has the broker protocols OUTBOX_EXPECT_PROTOCOLS names.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { waitFor } from '../lib/cluster.mjs';
import { startWithReceiver } from '../lib/setup.mjs';

let env;
before(async () => {
  env = await startWithReceiver();
});
after(async () => env?.destroy());

test('the installed library delivers a committed event as a signed webhook', async () => {
  const { cluster, sink } = env;
  const { rows } = await cluster.query(
    "SELECT outbox.enqueue('order.created', '{\"id\": 42}', key => 'order-42') AS id");
  const [{ id }] = rows;
  await sink.waitForIds([id]);
  const [got] = sink.byId(id);
  assert.equal(got.verified, true, 'signature verifies with the standardwebhooks package');
  assert.equal(got.body, '{"id": 42}');
  await waitFor(async () => (await cluster.counts()).delivered === 1, { message: 'the delivery recorded' });
});

test('the installed library has the expected broker protocols', async () => {
  const expected = process.env.OUTBOX_EXPECT_PROTOCOLS;
  assert.notEqual(expected, undefined, 'OUTBOX_EXPECT_PROTOCOLS names them ("" for none)');
  const { rows } = await env.cluster.query("SELECT current_setting('outbox.broker_protocols') AS protocols");
  assert.equal(rows[0].protocols, expected);
});
