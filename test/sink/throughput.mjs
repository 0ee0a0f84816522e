// Messages/s through each sink from COUNT messages (default 100,000),
// IN_FLIGHT at a time, against throwaway brokers on loopback: a check that
// a sink is not the worker's bottleneck, not a test.
//   node test/sink/throughput.mjs [COUNT] [IN_FLIGHT]
import { natsAddStream, startNats, startRabbit, startRedis, withRabbitChannel } from '../lib/brokers.mjs';
import { KafkaMock } from '../lib/kafka_mock.mjs';
import { SinkTool } from './tool.mjs';

const count = Number(process.argv[2] ?? 100000);
const inFlight = Number(process.argv[3] ?? 1000);

async function run(name, url, options) {
  const sink = new SinkTool(url, options);
  const r = await sink.bench({ count, inFlight, payloadBytes: 200 });
  await sink.close();
  console.log(`${name.padEnd(8)} ${String(r.acked).padStart(7)} acked ${String(r.failed).padStart(5)} failed  ` +
              `${r.seconds.toFixed(2).padStart(6)} s  ${String(r.rate).padStart(7)} msg/s  (${inFlight} in flight)` +
              (r.first_error ? `  first error: ${r.first_error}` : ''));
}

const nats = await startNats();
await natsAddStream(nats, { name: 'BENCH', subjects: ['bench.>'] });
await run('nats', `${nats.url}/bench.{key}`);
await nats.stop();

const redis = await startRedis();
await run('redis', `${redis.url}/bench`);
await redis.stop();

const rabbit = await startRabbit();
await withRabbitChannel(rabbit, (ch) => ch.assertQueue('bench', { durable: true }));
await run('rabbitmq', `${rabbit.url}/?routing_key=bench`, { credentials: { user: 'guest', password: 'guest' } });
await rabbit.close();

// librdkafka's mock cluster (3 brokers, 6 partitions): not Apache Kafka.
const kafka = await KafkaMock.start();
await kafka.createTopic('bench', 6, 3);
await run('kafka', `kafka://${kafka.bootstraps}/bench`);
await kafka.stop();
