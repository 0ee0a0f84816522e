// A database whose endpoints use a protocol the running library lacks: the
// server under test (pg_config first on PATH) runs a build without broker
// libraries (make BROKERS=), and its database has a NATS endpoint, as after
// a restore from a server that had it. Its deliveries wait, pending, no
// attempt counted, with a last_error that says why, while webhooks are
// delivered as usual; started with a library that has NATS (the same
// server's full build, OUTBOX_FULL_BINDIR), the same cluster delivers every
// one of them to a real nats-server, each at its first attempt.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { natsAddStream, natsStreamMessages, startNats } from '../lib/brokers.mjs';
import { waitFor } from '../lib/cluster.mjs';
import { startWithReceiver } from '../lib/setup.mjs';

const fullBindir = process.env.OUTBOX_FULL_BINDIR;
let env;
let nats;

before(async () => {
  assert.ok(fullBindir, 'OUTBOX_FULL_BINDIR names the programs of a server whose outbox library has NATS');
  nats = await startNats();
  await natsAddStream(nats, { name: 'EVENTS', subjects: ['events.>'] });
  env = await startWithReceiver({ conf: { 'outbox.workers': 2 } });
});
after(async () => {
  await env?.destroy();
  await nats?.stop();
});

async function natsDeliveries() {
  const { rows } = await env.cluster.query(
    `SELECT d.state, d.attempts, d.last_error, d.last_status FROM outbox.deliveries AS d
     JOIN outbox.endpoints AS ep ON ep.id = d.endpoint_id WHERE ep.name = 'orders-nats' ORDER BY d.seq`);
  return rows;
}

test('deliveries to a protocol the library lacks wait with a clear last_error, and are delivered by a library that has it', async () => {
  const { cluster, sink } = env;
  const { rows: [{ protocols }] } = await cluster.query("SELECT current_setting('outbox.broker_protocols') AS protocols");
  assert.equal(protocols, '', 'the server under test runs a build without broker libraries');
  // As restored: create_endpoint would refuse the URL (sql/broker_missing.sql).
  await cluster.query(`INSERT INTO outbox.endpoints (name, url, topics) VALUES ('orders-nats', $1, '{order.*}')`,
                      [`${nats.url}/events.{topic}.{key}`]);
  const ids = [];
  for (let n = 0; n < 5; n++) {
    const { rows } = await cluster.query(
      "SELECT outbox.enqueue('order.created', jsonb_build_object('n', $1::int), key => 'order-' || ($1::int % 2)) AS id",
      [n]);
    ids.push(rows[0].id);
  }
  // Webhooks go out as usual.
  await sink.waitForIds(ids);
  assert.ok(ids.every((id) => sink.byId(id)[0].verified), 'signed');
  // The NATS deliveries wait, and say why.
  await waitFor(async () => {
    const rows = await natsDeliveries();
    return rows.length === 5 && rows.every((r) => r.last_error !== null);
  }, { message: 'last_error of the waiting deliveries' });
  const waiting = await natsDeliveries();
  for (const r of waiting) {
    assert.equal(r.state, 'pending');
    assert.equal(r.attempts, 0, 'no attempt counted');
    assert.equal(r.last_status, null);
    assert.match(r.last_error, /^nats:\/\/ and tls:\/\/ URLs are not supported: this outbox library was built without libnats; deliveries wait until the server runs an outbox library that has it$/);
  }
  const { rows: [status] } = await cluster.query(
    "SELECT pending, last_error FROM outbox.endpoint_status WHERE name = 'orders-nats'");
  assert.equal(Number(status.pending), 5);
  assert.match(status.last_error, /built without libnats/);
  assert.match(cluster.log(), /endpoint "orders-nats" cannot be delivered to: nats:\/\/ and tls:\/\/ URLs are not supported/);
  // Still waiting a few polls later (the workers poll every 200 ms here),
  // and a new event joins them with the same last_error.
  const { rows: [late] } = await cluster.query("SELECT outbox.enqueue('order.paid', '{\"n\": 5}', key => 'order-1') AS id");
  ids.push(late.id);
  await sink.waitForIds([late.id]);
  await waitFor(async () => (await natsDeliveries()).filter((r) => r.last_error !== null).length === 6,
                { message: 'the new delivery marked too' });
  assert.deepEqual((await natsDeliveries()).map((r) => [r.state, r.attempts]), Array(6).fill(['pending', 0]));

  // The server now runs a library that has NATS: the same cluster delivers them.
  await cluster.stop();
  cluster.bindir = fullBindir;
  await cluster.start();
  const { rows: [{ full }] } = await cluster.query("SELECT current_setting('outbox.broker_protocols') AS full");
  assert.match(full, /nats/);
  await waitFor(async () => (await natsDeliveries()).every((r) => r.state === 'delivered'),
                { message: 'the NATS deliveries delivered' });
  assert.deepEqual((await natsDeliveries()).map((r) => [r.attempts, r.last_error]), Array(6).fill([1, null]));
  const messages = await natsStreamMessages(nats, 'EVENTS');
  assert.deepEqual(messages.map((m) => m.id).sort(), [...ids].sort(), 'each event once in the stream');
});
