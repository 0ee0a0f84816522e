// 14. Brokers (issue 17): the drain of row 2 into NATS JetStream (one
// server, file store), RabbitMQ (a durable queue, persistent messages,
// publisher confirms), Redis Streams (XADD) and Kafka (librdkafka's mock
// cluster, 3 brokers, a topic of 6 partitions: not Apache Kafka; only when
// the library has kafka), each against the HTTP drain
// to nginx on the same run. The brokers are started here, on loopback
// ports in temporary directories, by test/lib/brokers.mjs (which also stops
// them when the harness exits). Each drain: a backlog enqueued while
// delivery is paused, then unpaused; the rate is deliveries / (last
// finished_at - unpause), from the server's own clock.
import { env, scale } from './lib/env.mjs';
import { connect, one, resetQueue, setSystem, sleep } from './lib/pg.mjs';
import { enqueueBacklog, unpauseAndDrain } from './drain.mjs';
import {
  natsAddStream, redisCall, startNats, startRabbit, startRedis, withRabbitChannel,
} from '../test/lib/brokers.mjs';
import { KafkaMock } from '../test/lib/kafka_mock.mjs';

const STALL_S = 60;

// Unpauses and waits until `n` deliveries are finished (bounded; stops
// when nothing moves for a minute). Broker endpoints are counted in the
// database: nginx sees none of their messages.
async function drainIntoBroker(client, n, log, label) {
  const t0 = await setSystem(client, { 'outbox.paused': 'off' });
  const start = performance.now();
  const deadline = start + scale.drainDeadlineS * 1000;
  let last = -1;
  let lastProgress = start;
  let r;
  log(`${label}: unpaused`);
  for (;;) {
    await sleep(500);
    r = await one(client, `SELECT count(*) FILTER (WHERE state = 'delivered')::int AS delivered,
                                  count(*) FILTER (WHERE state = 'dead')::int AS dead,
                                  count(*) FILTER (WHERE state = 'pending')::int AS pending,
                                  extract(epoch FROM max(finished_at))::float8 AS last
                           FROM outbox.deliveries`);
    if (r.delivered + r.dead >= n) break;
    if (r.delivered > last) { last = r.delivered; lastProgress = performance.now(); }
    if (performance.now() - lastProgress > STALL_S * 1000 || performance.now() > deadline) {
      log(`${label}: stalled at ${r.delivered} delivered`);
      break;
    }
  }
  await setSystem(client, { 'outbox.paused': 'on' });
  const seconds = r.last - t0;
  const done = r.delivered === n;
  log(`${label}: ${r.delivered} delivered, ${r.dead} dead in ${seconds.toFixed(1)} s: ${Math.round(r.delivered / seconds)}/s`);
  return { delivered: r.delivered, dead: r.dead, pending: r.pending, seconds, perSecond: r.delivered / seconds, done };
}

export async function measureBrokers(log) {
  const client = await connect();
  const n = scale.brokerEvents;
  const started = [];
  const httpUrl = `http://127.0.0.1:${env.sinkPort}/hook`;
  try {
    log('brokers: starting nats-server, redis-server and RabbitMQ');
    const nats = await startNats();
    started.push(nats);
    await natsAddStream(nats, { name: 'BENCH', subjects: ['bench.>'] });
    const redis = await startRedis();
    started.push(redis);
    const rabbit = await startRabbit();
    started.push({ stop: () => rabbit.close() });
    await withRabbitChannel(rabbit, (ch) => ch.assertQueue('bench', { durable: true }));
    const brokers = {
      nats: `${nats.url}/bench.{topic}`,
      rabbitmq: `${rabbit.url.replace('amqp://', 'amqp://guest:guest@')}/%2F?routing_key=bench`,
      redis: `${redis.url}/bench`,
    };
    if ((await one(client, "SELECT current_setting('outbox.broker_protocols') ~ 'kafka' AS k")).k) {
      const kafka = await KafkaMock.start();
      started.push(kafka);
      await kafka.createTopic('bench-kafka', 6, 3);
      brokers.kafka = `kafka://${kafka.bootstraps}/bench-kafka`;
    }

    const result = { events: n };
    // The HTTP drain first, as row 2 makes it, to the same nginx.
    await setSystem(client, { 'outbox.paused': 'on', 'outbox.url': httpUrl });
    await resetQueue(client);
    await client.query('VACUUM outbox.events, outbox.deliveries');
    await enqueueBacklog(client, n, 'bench.http');
    const http = await unpauseAndDrain(client, n, log, 'http drain');
    result.http = { perSecond: http.perSecond, seconds: http.seconds, done: http.done };

    // Then each broker alone: the default endpoint off, one endpoint.
    await setSystem(client, { 'outbox.paused': 'on', 'outbox.url': '' });
    for (const [name, url] of Object.entries(brokers)) {
      await resetQueue(client);
      await client.query('VACUUM outbox.events, outbox.deliveries');
      await client.query(`SELECT outbox.create_endpoint('bench-${name}', $1, topics => '{bench.${name}}')`, [url]);
      await enqueueBacklog(client, n, `bench.${name}`);
      result[name] = await drainIntoBroker(client, n, log, `${name} drain`);
      result[name].ratio = result[name].perSecond / result.http.perSecond;
      await client.query(`SELECT outbox.drop_endpoint('bench-${name}')`);
    }
    result.redisEntries = Number(await redisCall(redis, 'XLEN', 'bench'));
    result.done = result.http.done && Object.keys(brokers).every((b) => result[b].done);
    return result;
  } finally {
    await setSystem(client, { 'outbox.url': httpUrl, 'outbox.paused': 'off' }).catch(() => {});
    await client.query("SELECT outbox.drop_endpoint(name) FROM outbox.endpoints WHERE name LIKE 'bench-%'").catch(() => {});
    await resetQueue(client).catch(() => {});
    for (const b of started.reverse()) await b.stop().catch(() => {});
    await client.end();
  }
}
