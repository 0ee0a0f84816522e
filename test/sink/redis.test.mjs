// The Redis Streams sink against a real redis-server on loopback.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { redisCall, redisStream, startRedis } from '../lib/brokers.mjs';
import { SinkTool, eventId, loseBrokerMidStream } from './tool.mjs';

let redis;
before(async () => { redis = await startRedis({ password: 'redis-pw' }); });
after(async () => { await redis?.stop(); });

const credentials = { password: 'redis-pw' };

test('XADD with id, topic, key, headers and payload fields, in order; a NULL key has no key field', async () => {
  const sink = new SinkTool(`${redis.url}/outbox:{topic}`, { credentials });
  const outcomes = await Promise.all(Array.from({ length: 300 }, (_, i) =>
    sink.send({ id: eventId(i), topic: 'orders', key: i % 4 === 3 ? null : `k ${i % 4}`,
                payload: JSON.stringify({ n: i }), headers: { 'x-a': `v"${i}`, 'x-b': 'é' } })));
  for (const o of outcomes) assert.deepEqual([o.acked, o.status], [true, 200], JSON.stringify(o));
  await sink.close();
  const entries = await redisStream(redis, 'outbox:orders');
  assert.equal(entries.length, 300);
  entries.forEach((e, i) => {
    assert.equal(e.id, eventId(i));
    assert.equal(e.topic, 'orders');
    assert.equal(e.key, i % 4 === 3 ? undefined : `k ${i % 4}`);
    assert.deepEqual(e.headers, { 'x-a': `v"${i}`, 'x-b': 'é' });
    assert.deepEqual(JSON.parse(e.payload), { n: i });
  });
});

test('maxlen trims the stream approximately (MAXLEN ~)', async () => {
  const sink = new SinkTool(`${redis.url}/trimmed?maxlen=10`, { credentials });
  for (let i = 0; i < 3; i++) {
    await Promise.all(Array.from({ length: 200 }, (_, j) => sink.send({ id: eventId(1000 + i * 200 + j) })));
  }
  await sink.close();
  const entries = await redisStream(redis, 'trimmed');
  assert.ok(entries.length >= 10 && entries.length < 600, `${entries.length} entries`);
  assert.equal(entries.at(-1).id, eventId(1599));
});

test('a wrong password fails with 403 and does not show it', async () => {
  const sink = new SinkTool(`${redis.url}/s`, { credentials: { password: 'wr0ng-s3cret' } });
  const o = await sink.send({ id: eventId(2000) });
  await sink.close();
  assert.deepEqual([o.acked, o.status], [false, 403]);
  assert.match(o.error, /NOAUTH|WRONGPASS/);
  assert.doesNotMatch(o.error, /wr0ng-s3cret/);
});

test('a key that holds something else fails with 400 (WRONGTYPE)', async () => {
  await redisCall(redis, 'SET', 'plain', 'x');
  const sink = new SinkTool(`${redis.url}/plain`, { credentials });
  const o = await sink.send({ id: eventId(2100) });
  await sink.close();
  assert.deepEqual([o.acked, o.status], [false, 400]);
  assert.match(o.error, /WRONGTYPE/);
});

test('the address guard refuses a loopback address outside allowed_networks', async () => {
  const sink = new SinkTool(`redis://127.0.0.3:${redis.port}/s`, { credentials });
  const o = await sink.send({ id: eventId(2200) });
  await sink.close();
  assert.deepEqual([o.acked, o.refused, o.status], [false, true, 0]);
  assert.match(o.error, /127\.0\.0\.3: loopback/);
});

test('a server lost with messages in flight fails them; after its restart, messages succeed again', async () => {
  const sink = new SinkTool(`${redis.url}/restart`, { credentials, connectTimeout: 2000 });
  assert.equal((await sink.send({ id: eventId(3000) })).acked, true);
  const { lost, later } = await loseBrokerMidStream(redis, sink, 3000);
  for (const o of lost) {
    assert.deepEqual([o.acked, o.status], [false, 0], JSON.stringify(o));
    assert.match(o.error, /connection|closed/i);
  }
  assert.equal(later.status, 200);
  await sink.close();
  assert.deepEqual((await redisStream(redis, 'restart')).map((e) => e.id), [eventId(3010)]); // nothing saved: a fresh server
});

test('a message with no reply in time fails with a timeout; the sink stays usable', async () => {
  const sink = new SinkTool(`${redis.url}/slow`, { credentials });
  assert.equal((await sink.send({ id: eventId(4000) })).acked, true);
  await redis.pause();
  const o = await sink.send({ id: eventId(4001), timeout: 300 });
  redis.resume();
  assert.deepEqual([o.acked, o.status], [false, 0]);
  assert.match(o.error, /timeout/);
  assert.equal((await sink.send({ id: eventId(4002) })).acked, true);
  await sink.close();
});
