// Kafka endpoints end to end: the real worker publishes into librdkafka's
// mock cluster (3 brokers on loopback, test/lib/kafka_mock.mjs; not Apache
// Kafka) with the guarantees of the other brokers: every committed event
// stored, per-key order through a broker's outage, the Java client's
// partition for each key, the headers, dead letters for refusals. Skipped
// when the library was built without librdkafka.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { startCluster, waitFor } from '../lib/cluster.mjs';
import { KafkaError, KafkaMock, javaPartition } from '../lib/kafka_mock.mjs';

let cluster;
let kafka;
let builtIn = false;

before(async () => {
  cluster = await startCluster({ conf: { 'outbox.log_attempts': 'all' } });
  builtIn = (await cluster.query("SELECT current_setting('outbox.broker_protocols') ~ 'kafka' AS k")).rows[0].k;
  if (builtIn) kafka = await KafkaMock.start();
});
after(async () => {
  await cluster?.destroy();
  await kafka?.stop();
});

async function deliveries(endpoint) {
  const { rows } = await cluster.query(
    `SELECT count(*) FILTER (WHERE d.state = 'delivered')::int AS delivered,
            count(*) FILTER (WHERE d.state = 'dead')::int AS dead,
            coalesce(sum(d.attempts), 0)::int AS attempts
     FROM outbox.deliveries AS d JOIN outbox.endpoints AS ep ON ep.id = d.endpoint_id WHERE ep.name = $1`, [endpoint]);
  return rows[0];
}

test('keyed events through a broker set down and brought back: all stored, in key order, Java partitions, headers',
  async (t) => {
    if (!builtIn) return t.skip('built without librdkafka');
    await kafka.createTopic('kafka.order', 6, 3);
    await cluster.query(`SELECT outbox.create_endpoint('kafka', $1, topics => '{kafka.*}', max_attempts => 1000,
                                                       timeout => '3s', retry_base => '100ms', retry_max => '500ms',
                                                       headers => '{"x-team": "billing"}')`,
                        [`kafka://${kafka.bootstraps}/{topic}`]);
    const keys = 8;
    const rounds = 30;
    const ids = [];
    for (let n = 0; n < rounds; n++) {
      if (n === 10) await kafka.down(2);
      if (n === 20) await kafka.up(2);
      const { rows } = await cluster.query(
        `SELECT outbox.enqueue('kafka.order', jsonb_build_object('key', 'k' || k, 'n', $1::int), key => 'k' || k,
                               headers => '{"x-source": "e2e"}')::text AS id FROM generate_series(1, $2::int) AS k`,
        [n, keys]);
      ids.push(...rows.map((r) => r.id));
      await new Promise((r) => setTimeout(r, 100));
    }
    await waitFor(async () => (await deliveries('kafka')).delivered === keys * rounds,
                  { timeout: 90000, message: 'every event delivered' });
    const messages = await kafka.read('kafka.order');
    const header = (m, name) => m.headers.find(([n]) => n === name)?.[1];
    const seen = new Map();
    const perKey = new Map();
    for (const m of messages) {
      const id = header(m, 'id');
      seen.set(id, (seen.get(id) ?? 0) + 1);
      const { key, n } = JSON.parse(m.value);
      assert.equal(m.key, key);
      assert.equal(m.partition, javaPartition(key, 6), `${key}: the Java client's partition`);
      assert.equal(header(m, 'topic'), 'kafka.order');
      assert.equal(header(m, 'x-source'), 'e2e');
      assert.equal(header(m, 'x-team'), 'billing');
      const list = perKey.get(key) ?? [];
      if (seen.get(id) === 1) list.push(n); // the first copy of each event, in partition order
      perKey.set(key, list);
    }
    const stats = await deliveries('kafka');
    const duplicates = messages.length - seen.size;
    t.diagnostic(`Kafka (mock cluster): ${ids.length} events committed, broker 2 down for rounds 10-19; ` +
                 `${messages.length} messages stored (${seen.size} distinct ids, ${duplicates} duplicates), ` +
                 `${stats.attempts} publish attempts`);
    assert.deepEqual([...seen.keys()].sort(), [...ids].sort());
    for (const [key, ns] of perKey) assert.deepEqual(ns, [...Array(rounds).keys()], `${key} out of order`);
    // Duplicates only from attempts that failed and were sent again.
    assert.ok(duplicates <= stats.attempts - ids.length, `${duplicates} duplicates, ${stats.attempts} attempts`);
  });

test('an unknown topic is a failed attempt (status 3), retried, then dead', async (t) => {
  if (!builtIn) return t.skip('built without librdkafka');
  await kafka.topicError('kafka-missing', KafkaError.UNKNOWN_TOPIC_OR_PART);
  await cluster.query(`SELECT outbox.create_endpoint('kafka-missing', $1, topics => '{missing}', max_attempts => 2,
                                                     retry_base => '50ms', retry_max => '100ms', timeout => '10s')`,
                      [`kafka://${kafka.bootstraps}/kafka-missing`]);
  await cluster.query("SELECT outbox.enqueue('missing', '{}')");
  await waitFor(async () => (await deliveries('kafka-missing')).dead === 1, { timeout: 30000, message: 'dead' });
  const { rows } = await cluster.query(
    `SELECT d.attempts, d.last_status, d.last_error FROM outbox.deliveries AS d
     JOIN outbox.endpoints AS ep ON ep.id = d.endpoint_id WHERE ep.name = 'kafka-missing'`);
  assert.deepEqual([rows[0].attempts, rows[0].last_status], [2, 3]);
  assert.match(rows[0].last_error, /topic/i);
});
