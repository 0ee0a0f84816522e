// The Kafka sink against librdkafka's mock cluster (3 brokers on loopback,
// test/lib/kafka_mock.mjs): not Apache Kafka, but the Kafka protocol, the
// idempotent producer's sequence checks, brokers that go down and requests
// that fail on command. Messages are read back with librdkafka's consumer
// (in kafka_mock); the partition a key lands in is checked against
// kafkajs' Java-compatible murmur2 partitioner.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { ApiKey, KafkaError, KafkaMock, javaPartition } from '../lib/kafka_mock.mjs';
import { SinkTool, eventId } from './tool.mjs';

let kafka;
before(async () => { kafka = await KafkaMock.start(); });
after(async () => { await kafka?.stop(); });

const url = (topic) => `kafka://${kafka.bootstraps}/${topic}`;
const header = (m, name) => m.headers.filter(([n]) => n === name).map(([, v]) => v);

test('a message carries the key, the payload and the headers id, topic, and the event\'s and endpoint\'s', async () => {
  await kafka.createTopic('orders-created', 6, 3);
  const sink = new SinkTool(url('orders-{topic}'));
  const outcomes = await Promise.all(Array.from({ length: 120 }, (_, i) => sink.send({
    id: eventId(i), topic: 'created', key: i % 10 === 9 ? null : `order-${i % 10}`, payload: JSON.stringify({ n: i }),
    headers: { 'x-a': `v"${i}`, 'x-b': 'é', id: 'not-the-id', traceparent: '00-abc-def-01' } })));
  for (const o of outcomes) assert.deepEqual([o.acked, o.status, o.error], [true, 200, ''], JSON.stringify(o));
  await sink.close();
  const messages = await kafka.read('orders-created');
  assert.equal(messages.length, 120);
  const byId = new Map(messages.map((m) => [header(m, 'id')[0], m]));
  for (let i = 0; i < 120; i++) {
    const m = byId.get(eventId(i));
    assert.ok(m, `event ${i} stored`);
    assert.deepEqual(m.headers, [['id', eventId(i)], ['topic', 'created'], ['x-a', `v"${i}`], ['x-b', 'é'],
      ['traceparent', '00-abc-def-01']]); // the event's own "id" header is not sent
    assert.deepEqual(JSON.parse(m.value), { n: i });
    if (i % 10 === 9) assert.equal(m.key, null);
    else {
      assert.equal(m.key, `order-${i % 10}`);
      assert.equal(m.partition, javaPartition(`order-${i % 10}`, 6), `order-${i % 10}: the Java client's partition`);
    }
  }
});

test('per-key order over 3 brokers and 6 partitions, a broker down mid-stream and back', async () => {
  await kafka.createTopic('ordered', 6, 3);
  const sink = new SinkTool(url('ordered'));
  const keys = Array.from({ length: 12 }, (_, k) => `key-${k}`);
  const perKey = 40;
  let sent = 0;
  let failed = 0;
  let acked = 0;
  let downAt = null;
  let backUp = null;
  // As the worker does: one message of a key in flight; a failed one is
  // sent again (same event id) before the key's next.
  await Promise.all(keys.map(async (key, k) => {
    for (let n = 0; n < perKey; n++) {
      for (;;) {
        sent++;
        const o = await sink.send({ id: eventId(k * 1000 + n), topic: 'ordered', key, payload: JSON.stringify({ key, n }),
                                    timeout: 1500 });
        if (o.acked) break;
        failed++;
        assert.equal(o.status, 0, JSON.stringify(o));
        await new Promise((r) => setTimeout(r, 100));
      }
      if (++acked === 120) {
        downAt = acked;
        await kafka.down(2);
        backUp = new Promise((resolve, reject) => setTimeout(() => kafka.up(2).then(resolve, reject), 2500));
      }
    }
  }));
  await sink.close();
  assert.ok(downAt, 'the broker went down mid-stream');
  await backUp;
  const messages = await kafka.read('ordered');
  const ids = new Set();
  let duplicates = 0;
  const last = new Map();
  for (const m of messages) {
    const id = header(m, 'id')[0];
    const { key, n } = JSON.parse(m.value);
    assert.equal(m.partition, javaPartition(key, 6));
    if (ids.has(id)) { duplicates++; continue; }
    ids.add(id);
    // In partition order, each key's first copies come 0, 1, 2, ...
    assert.equal(n, (last.get(key) ?? -1) + 1, `${key}: ${n} after ${last.get(key)}`);
    last.set(key, n);
  }
  assert.equal(ids.size, keys.length * perKey, 'every event stored');
  console.log(`kafka per-key order: ${messages.length} stored for ${keys.length * perKey} events, ${duplicates} ` +
              `duplicates, ${failed} failed attempts sent again (${sent} sends)`);
  // Resends only follow failed attempts.
  assert.ok(duplicates <= failed, `${duplicates} duplicates for ${failed} resends`);
});

test('a retriable produce error is retried inside the producer: acknowledged once', async () => {
  await kafka.createTopic('retried', 1, 3);
  await kafka.pushErrors(ApiKey.Produce, [KafkaError.NOT_ENOUGH_REPLICAS, KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.NOT_ENOUGH_REPLICAS]);
  const sink = new SinkTool(url('retried'));
  const o = await sink.send({ id: eventId(5000), key: 'k', timeout: 10000 });
  await sink.close();
  assert.deepEqual([o.acked, o.status], [true, 200], JSON.stringify(o));
  const messages = await kafka.read('retried');
  assert.deepEqual(messages.map((m) => header(m, 'id')[0]), [eventId(5000)]);
});

test('a produce error that is not retriable fails the attempt with Kafka\'s error code; the next attempt goes', async () => {
  await kafka.createTopic('refused', 1, 3);
  await kafka.pushErrors(ApiKey.Produce, [KafkaError.MESSAGE_TOO_LARGE]);
  const sink = new SinkTool(url('refused'));
  const o = await sink.send({ id: eventId(5100), key: 'k' });
  const again = await sink.send({ id: eventId(5100), key: 'k' }); // the worker's next attempt
  await sink.close();
  assert.deepEqual([o.acked, o.status], [false, 10], JSON.stringify(o));
  assert.match(o.error, /MSG_SIZE_TOO_LARGE/);
  assert.deepEqual([again.acked, again.status], [true, 200], JSON.stringify(again));
  assert.deepEqual((await kafka.read('refused')).map((m) => header(m, 'id')[0]), [eventId(5100)]);
});

test('a topic the broker does not authorize fails with 29 (TOPIC_AUTHORIZATION_FAILED)', async () => {
  await kafka.createTopic('unauthorized', 1, 3);
  await kafka.pushErrors(ApiKey.Produce, [KafkaError.TOPIC_AUTHORIZATION_FAILED]);
  const sink = new SinkTool(url('unauthorized'));
  const o = await sink.send({ id: eventId(5150), key: 'k' });
  await sink.close();
  assert.deepEqual([o.acked, o.status], [false, 29], JSON.stringify(o));
  assert.match(o.error, /TOPIC_AUTHORIZATION_FAILED/);
});

test('an unknown topic fails with 3 (UNKNOWN_TOPIC_OR_PART) before the message\'s timeout', async () => {
  await kafka.topicError('nosuch', KafkaError.UNKNOWN_TOPIC_OR_PART);
  const sink = new SinkTool(url('nosuch'));
  const o = await sink.send({ id: eventId(5200), timeout: 15000 });
  await sink.close();
  assert.deepEqual([o.acked, o.status], [false, 3], JSON.stringify(o));
  assert.match(o.error, /topic/i);
  assert.ok(o.us < 10_000_000, `${o.us} us`);
});

test('a topic name Kafka cannot have fails the message; a template with bad text is refused', async () => {
  const sink = new SinkTool(url('events.{key}'));
  const o = await sink.send({ id: eventId(5300), key: 'a/b' });
  await sink.close();
  assert.deepEqual([o.acked, o.status], [false, 0]);
  assert.match(o.error, /not a valid Kafka topic name/);
  const bad = new SinkTool(url('events%20x'));
  assert.equal(await bad.exited, 2);
  assert.match(bad.stderr, /topic \(the URL's path\)/);
});

test('the address guard: a literal refused at once; a name whose addresses are refused, in the connect hook', async () => {
  const port = kafka.bootstraps.split(',')[0].split(':')[1];
  const literal = new SinkTool(`kafka://127.0.0.1:${port}/t`, { allowed: '127.0.0.2/32' });
  const a = await literal.send({ id: eventId(5400) });
  await literal.close();
  assert.deepEqual([a.acked, a.refused, a.status], [false, true, 0], JSON.stringify(a));
  assert.match(a.error, /127\.0\.0\.1: loopback/);
  // librdkafka resolves and connects by itself: its connect hook refuses
  // 127.0.0.1 (and ::1) of localhost, so the message is never sent.
  await kafka.createTopic('guarded', 1, 3);
  const named = new SinkTool(`kafka://localhost:${port}/guarded`, { allowed: '127.0.0.2/32' });
  const b = await named.send({ id: eventId(5401), timeout: 8000 });
  await named.close();
  assert.deepEqual([b.acked, b.refused, b.status], [false, true, 0], JSON.stringify(b));
  assert.match(b.error, /refused to connect to (127\.0\.0\.1|::1): loopback/);
  assert.deepEqual(await kafka.read('guarded'), []);
});

test('credentials go to SASL and never show (the mock has no SASL: the attempt fails)', async () => {
  const sink = new SinkTool(url('sasl'), { credentials: { user: 'app', password: 'k4fka-s3cret' } });
  const o = await sink.send({ id: eventId(5500), timeout: 3000 });
  await sink.close();
  assert.equal(o.acked, false);
  assert.doesNotMatch(o.error, /k4fka-s3cret/);
  assert.doesNotMatch(sink.stderr, /k4fka-s3cret/);
});
