// A Kafka cluster for the tests and the bench: build/unit/kafka_mock
// (test/sink/kafka_mock.cpp), librdkafka's mock cluster with 3 brokers on
// loopback ports, driven by commands on its stdin. It is not Apache Kafka:
// it speaks the protocol, keeps the messages, checks the idempotent
// producer's sequences and can take a broker down or fail requests.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const mockPath = process.env.OUTBOX_KAFKA_MOCK ?? path.join(root, 'build/unit/kafka_mock');

function build() {
  if (fs.existsSync(mockPath)) return;
  for (const args of [['-S', root, '-B', path.join(root, 'build/unit')],
    ['--build', path.join(root, 'build/unit'), '-j2', '--target', 'kafka_mock']]) {
    const r = spawnSync('cmake', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cmake ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
  }
}

// The partition the Java client (and kafkajs' DefaultPartitioner, the same
// murmur2) picks for a key among `partitions`.
export function javaPartition(key, partitions) {
  const { Partitioners } = createRequire(import.meta.url)('kafkajs');
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({ partitionId: i, leader: 1 }));
  return partitioner({ topic: 't', partitionMetadata, message: { key } });
}

// Kafka's error codes used by the tests.
export const KafkaError = {
  UNKNOWN_TOPIC_OR_PART: 3,
  NOT_LEADER_FOR_PARTITION: 6,
  MESSAGE_TOO_LARGE: 10,
  NOT_ENOUGH_REPLICAS: 19,
  TOPIC_AUTHORIZATION_FAILED: 29,
};
export const ApiKey = { Produce: 0 };

export class KafkaMock {
  static async start({ brokers = 3 } = {}) {
    build();
    const mock = new KafkaMock(brokers);
    const first = await mock.next();
    mock.bootstraps = first.bootstraps;
    return mock;
  }

  constructor(brokers) {
    // Referenced (it keeps Node running while a test waits for it); killed
    // with Node.
    this.child = spawn(mockPath, [String(brokers)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const child = this.child;
    process.on('exit', () => child.kill('SIGKILL'));
    this.stderr = '';
    this.child.stderr.on('data', (d) => { this.stderr += d; });
    this.lines = [];
    this.waiters = [];
    this.queue = Promise.resolve(); // one command at a time: answers are not tagged
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => {
      for (const w of this.waiters) w.reject(new Error(`kafka_mock exited (${code ?? signal}): ${this.stderr}`));
      resolve(code ?? signal);
    }));
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      const o = JSON.parse(line);
      const w = this.waiters.shift();
      if (w) w.resolve(o);
      else this.lines.push(o);
    });
  }

  next() {
    if (this.lines.length) return Promise.resolve(this.lines.shift());
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  // Runs `fn` when the commands before it are answered.
  serialized(fn) {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => {});
    return run;
  }

  command(line) {
    return this.serialized(async () => {
      this.child.stdin.write(`${line}\n`);
      const o = await this.next();
      if (o.error) throw new Error(`kafka_mock ${line}: ${o.error}`);
      return o;
    });
  }

  createTopic(name, partitions = 6, replication = 3) { return this.command(`create ${name} ${partitions} ${replication}`); }
  down(id) { return this.command(`down ${id}`); }
  up(id) { return this.command(`up ${id}`); }
  // The next `codes.length` requests of `apiKey` fail with these codes, in order.
  pushErrors(apiKey, codes) { return this.command(`errors ${apiKey} ${codes.join(' ')}`); }
  topicError(topic, code) { return this.command(`topic-error ${topic} ${code}`); }

  // Every message of a topic: { partition, offset, key, value, headers: [[name, value], ...] }.
  read(topic) {
    return this.serialized(async () => {
      this.child.stdin.write(`read ${topic}\n`);
      const out = [];
      for (;;) {
        const o = await this.next();
        if (o.error) throw new Error(`kafka_mock read ${topic}: ${o.error}`);
        if (o.end) return out;
        out.push(o);
      }
    });
  }

  async stop() {
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}
