// The NATS sink over TLS (tls://) against a nats-server that requires it,
// with a self-signed certificate trusted through the CA file the worker
// passes from outbox.ca_file; without that CA the handshake fails, and the
// message with it, as a failure with no answer (status 0).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { natsAddStream, natsStreamMessages, startNats } from '../lib/brokers.mjs';
import { SinkTool, eventId } from './tool.mjs';

let nats;
before(async () => {
  nats = await startNats({ tls: true });
  await natsAddStream(nats, { name: 'SECURE', subjects: ['secure.>'] });
});
after(async () => { await nats?.stop(); });

test('tls:// with the server\'s certificate as CA: published and acknowledged, stored once each', async () => {
  const sink = new SinkTool(`${nats.url}/secure.{topic}`, { caFile: nats.caFile });
  const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) =>
    sink.send({ id: eventId(7000 + i), topic: 'order.created', payload: JSON.stringify({ n: i }) })));
  for (const o of outcomes) assert.deepEqual([o.acked, o.status, o.error], [true, 200, ''], JSON.stringify(o));
  await sink.close();
  const ids = (await natsStreamMessages(nats, 'SECURE')).map((m) => m.id);
  assert.deepEqual(ids, Array.from({ length: 50 }, (_, i) => eventId(7000 + i)));
});

test('tls:// without a CA that trusts the server: the message fails (no answer), nothing is stored', async () => {
  const before = (await natsStreamMessages(nats, 'SECURE')).length;
  const sink = new SinkTool(`${nats.url}/secure.{topic}`, { connectTimeout: 3000 });
  const o = await sink.send({ id: eventId(7100), topic: 'order.created' });
  await sink.close();
  assert.deepEqual([o.acked, o.status], [false, 0], JSON.stringify(o));
  assert.notEqual(o.error, '');
  assert.equal((await natsStreamMessages(nats, 'SECURE')).length, before);
});
