// Throwaway message brokers on loopback for tests: NATS (JetStream, single
// server or a cluster), Redis and RabbitMQ, each on free ports in its own
// temporary directory, never the system's instances. Every handle has
// stop() (graceful), kill() (SIGKILL), pause()/resume() (SIGSTOP/SIGCONT:
// the broker keeps its connections but answers nothing, so messages stay in
// flight) and restart() (same ports, same data). Whatever is still running
// when the process exits is killed and its directory removed.
//
//   const nats = await startNats();                 nats.url  nats://127.0.0.1:PORT
//   const cluster = await startNatsCluster();       cluster.url  nats://127.0.0.1:P1,127.0.0.1:P2,...
//   const redis = await startRedis({ password });   redis.url  redis://127.0.0.1:PORT
//   const rabbit = await startRabbit();             rabbit.url  amqp://127.0.0.1:PORT  (guest/guest)
//
// Consumers to see what arrived: natsStreamMessages, redisStream,
// rabbitQueueMessages (each returns plain objects: id, headers, payload ...).
//
// Start-up on a 2-core machine: nats-server and redis-server well under a
// second, a 3-node JetStream cluster 2-5 s until its stream is ready,
// RabbitMQ about 6 s (the Erlang VM and the broker boot).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { waitFor } from './cluster.mjs';
import { procStat, processGroup } from './proc.mjs';

export { waitFor };

const running = new Set(); // process handles to kill at exit
const dirs = new Set(); // temporary directories to remove at exit
const usedPorts = new Set();

process.on('exit', () => {
  for (const child of running) killGroup(child, 'SIGKILL');
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => process.exit(130));
}

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal); // the broker and whatever it started (rabbitmq-server's beam.smp)
  } catch {
    // already gone
  }
}

// A port nothing listens on now, on 127.0.0.1, not handed out before in
// this process.
export async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.on('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address();
        server.close(() => resolve(port));
      });
    });
    if (!usedPorts.has(port)) {
      usedPorts.add(port);
      return port;
    }
  }
}

export function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `outbox-${prefix}-`));
  dirs.add(dir);
  return dir;
}

function which(program) {
  const found = spawnSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' }).stdout.trim();
  if (!found) throw new Error(`${program} is not installed (scripts/test.sh installs it)`);
  return found;
}

function portOpen(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

// A broker process: started in its own process group so that signals
// reach everything it starts; output goes to a log file in its directory.
class Broker {
  constructor({ name, dir, command, args, env = {}, port, ready }) {
    Object.assign(this, { name, dir, command, args, env, port });
    this.ready = ready ?? (() => portOpen(port));
    this.logFile = path.join(dir, `${name}.log`);
    this.child = null;
  }

  async start({ timeout = 30000 } = {}) {
    if (this.child) throw new Error(`${this.name} is already running`);
    const log = fs.openSync(this.logFile, 'a');
    const child = spawn(this.command, this.args, {
      cwd: this.dir, env: { ...process.env, ...this.env }, stdio: ['ignore', log, log], detached: true,
    });
    fs.closeSync(log);
    this.child = child;
    running.add(child);
    let exited = null;
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      running.delete(child);
      if (this.child === child) this.child = null;
    });
    try {
      await waitFor(async () => {
        if (exited) throw new Error(`${this.name} exited (${exited.code ?? exited.signal}) while starting: ${this.logTail()}`);
        return this.ready();
      }, { timeout, interval: 100, message: `${this.name} to accept connections on 127.0.0.1:${this.port}` });
    } catch (err) {
      if (exited) throw new Error(`${this.name} exited (${exited.code ?? exited.signal}) while starting: ${this.logTail()}`);
      throw new Error(`${err.message}\n${this.logTail()}`);
    }
    return this;
  }

  logTail(lines = 15) {
    try {
      return fs.readFileSync(this.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  get running() { return this.child !== null; }

  async #signalAndWait(signal, timeout) {
    const child = this.child;
    if (!child) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    // A paused broker cannot stop; SIGKILL needs no SIGCONT (which would
    // let a paused broker answer what it holds before it dies).
    if (signal !== 'SIGKILL') killGroup(child, 'SIGCONT');
    killGroup(child, signal);
    const timer = new Promise((resolve) => setTimeout(resolve, timeout, 'timeout'));
    if ((await Promise.race([gone, timer])) === 'timeout') {
      killGroup(child, 'SIGKILL');
      await gone;
    }
  }

  stop({ timeout = 15000 } = {}) { return this.#signalAndWait('SIGTERM', timeout); }
  kill() { return this.#signalAndWait('SIGKILL', 5000); }
  // Resolves once the kernel shows every process of the broker's group
  // stopped (state T; rabbitmq-server's beam.smp is the one that answers):
  // kill(2) only queues SIGSTOP, and a message sent in the moment before it
  // takes effect would be answered. A process gone answers nothing either.
  async pause() {
    const child = this.child;
    if (!child) throw new Error(`${this.name} is not running`);
    killGroup(child, 'SIGSTOP');
    await waitFor(() => processGroup(child.pid).every((pid) => (procStat(pid)?.[0] ?? 'T') === 'T'),
                  { timeout: 5000, interval: 5, message: `${this.name} to stop (SIGSTOP)` });
  }
  resume() { if (this.child) killGroup(this.child, 'SIGCONT'); }

  async restart(options) {
    await this.stop();
    return this.start(options);
  }
}

// ---------------------------------------------------------------- NATS

function natsConfig({ name, port, dir, cluster, auth, tls }) {
  const lines = [
    `server_name: ${name}`,
    `listen: 127.0.0.1:${port}`,
    `jetstream { store_dir: "${path.join(dir, 'js')}" }`,
  ];
  if (tls) lines.push(`tls { cert_file: "${tls.cert}", key_file: "${tls.key}" }`);
  if (auth?.token) lines.push(`authorization { token: "${auth.token}" }`);
  if (auth?.user) lines.push(`authorization { user: "${auth.user}", password: "${auth.password}" }`);
  if (cluster) {
    lines.push(`cluster { name: ${cluster.name}, listen: 127.0.0.1:${cluster.port}, routes: [${cluster.routes
      .map((p) => `nats-route://127.0.0.1:${p}`).join(', ')}] }`);
  }
  return lines.join('\n') + '\n';
}

// A self-signed certificate for 127.0.0.1 in `dir` (openssl): { cert, key }.
// The certificate is also the CA file a client trusts it with.
export function selfSignedCertificate(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
                                  '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  fs.chmodSync(cert, 0o644);
  return { cert, key };
}

// One nats-server with JetStream. `auth`: { token } or { user, password };
// `tls`: clients must use TLS (tls:// URLs), with a self-signed certificate
// (the handle's caFile).
export async function startNats({ auth, tls = false } = {}) {
  const dir = tempDir('nats');
  const port = await freePort();
  const conf = path.join(dir, 'nats.conf');
  const certificate = tls ? selfSignedCertificate(dir) : null;
  fs.writeFileSync(conf, natsConfig({ name: `n${port}`, port, dir, auth, tls: certificate }));
  const broker = new Broker({ name: 'nats-server', dir, command: which('nats-server'), args: ['-c', conf], port });
  await broker.start();
  return Object.assign(broker, { url: `${tls ? 'tls' : 'nats'}://127.0.0.1:${port}`, clientServers: [`127.0.0.1:${port}`],
                                 auth, caFile: certificate?.cert });
}

// `size` nats-servers (JetStream) routed into one cluster. Handle: nodes
// (each a broker handle), url (all of them), servers (for the nats client),
// stop().
export async function startNatsCluster({ size = 3 } = {}) {
  const ports = [];
  const routes = [];
  for (let i = 0; i < size; i++) {
    ports.push(await freePort());
    routes.push(await freePort());
  }
  const name = `outbox${ports[0]}`;
  const nodes = ports.map((port, i) => {
    const dir = tempDir(`nats${i + 1}`);
    const conf = path.join(dir, 'nats.conf');
    fs.writeFileSync(conf, natsConfig({ name: `n${i + 1}`, port, dir,
                                        cluster: { name, port: routes[i], routes: routes.filter((_, j) => j !== i) } }));
    return new Broker({ name: `nats-server n${i + 1}`, dir, command: which('nats-server'), args: ['-c', conf], port });
  });
  await Promise.all(nodes.map((n) => n.start()));
  return {
    nodes,
    url: `nats://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    clientServers: ports.map((p) => `127.0.0.1:${p}`),
    async stop() { await Promise.all(nodes.map((n) => n.stop())); },
  };
}

// A nats client connection to a server or cluster handle (close it).
export async function natsConnect(handle) {
  const { connect } = await import('nats');
  const auth = handle.auth ?? {};
  return connect({ servers: handle.clientServers, ...auth, reconnectTimeWait: 200, maxReconnectAttempts: -1,
                   ...(handle.caFile ? { tls: { caFile: handle.caFile } } : {}) });
}

// Creates (or updates) a stream; retries while a fresh cluster elects its
// JetStream leader. `duplicateWindow` in ms (JetStream's default: 2 min).
export async function natsAddStream(handle, { name, subjects, replicas = 1, duplicateWindow = 120000 }) {
  const { nanos } = await import('nats');
  const nc = await natsConnect(handle);
  try {
    await waitFor(async () => {
      const jsm = await nc.jetstreamManager({ timeout: 2000 });
      await jsm.streams.add({ name, subjects, num_replicas: replicas, duplicate_window: nanos(duplicateWindow) });
      return true;
    }, { timeout: 30000, interval: 250, message: `JetStream stream ${name}` });
  } finally {
    await nc.close();
  }
}

// Every message in a stream, in stream order: { seq, subject, id (the
// Nats-Msg-Id), headers {name: value}, payload (text) }.
// Retried while a cluster settles (a restarted node catching up answers
// JetStream API requests late).
export async function natsStreamMessages(handle, stream) {
  return waitFor(() => readStream(handle, stream), { timeout: 30000, interval: 500, message: `messages of stream ${stream}` });
}

async function readStream(handle, stream) {
  const nc = await natsConnect(handle);
  try {
    const jsm = await nc.jetstreamManager({ timeout: 5000 });
    const info = await jsm.streams.info(stream);
    const out = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq });
      const headers = {};
      for (const [k, v] of m.header ?? []) headers[k] = v[0];
      out.push({ seq, subject: m.subject, id: headers['Nats-Msg-Id'], headers, payload: new TextDecoder().decode(m.data) });
    }
    return out;
  } finally {
    await nc.close();
  }
}

// ---------------------------------------------------------------- Redis

// One redis-server, nothing saved to disk unless `persist` (an append-only
// file, fsync'd at every write: a restart keeps every entry). `password`:
// requirepass.
export async function startRedis({ password, persist = false } = {}) {
  const dir = tempDir('redis');
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', persist ? 'yes' : 'no', ...(persist ? ['--appendfsync', 'always'] : []),
                '--daemonize', 'no', ...(password ? ['--requirepass', password] : [])];
  const broker = new Broker({ name: 'redis-server', dir, command: which('redis-server'), args, port });
  await broker.start();
  return Object.assign(broker, { url: `redis://127.0.0.1:${port}`, password });
}

async function redisClient(handle) {
  const { createClient } = await import('redis');
  const client = createClient({ socket: { host: '127.0.0.1', port: handle.port, reconnectStrategy: false },
                                password: handle.password });
  client.on('error', () => {});
  await client.connect();
  return client;
}

// One command, e.g. redisCall(redis, 'SET', 'k', 'v').
export async function redisCall(handle, ...args) {
  const client = await redisClient(handle);
  try {
    return await client.sendCommand(args.map(String));
  } finally {
    await client.quit();
  }
}

// Every entry of a stream: { entryId, id, topic, key (undefined when the
// field is absent), headers (parsed), payload (text), fields }.
export async function redisStream(handle, stream) {
  const client = await redisClient(handle);
  try {
    const entries = await client.xRange(stream, '-', '+');
    return entries.map(({ id, message }) => ({
      entryId: id, id: message.id, topic: message.topic, key: message.key,
      headers: JSON.parse(message.headers), payload: message.payload, fields: message,
    }));
  } finally {
    await client.quit();
  }
}

// ---------------------------------------------------------------- RabbitMQ

// One RabbitMQ node with its own epmd, Erlang cookie (HOME), node name,
// data (mnesia) and log directories; no plugins. Runs as root (the
// packaged wrapper in /usr/sbin would switch to the rabbitmq user and the
// system's directories: the scripts in /usr/lib/rabbitmq/bin are used).
export async function startRabbit() {
  const dir = tempDir('rabbit');
  const [port, distPort, epmdPort, tlsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const certificate = selfSignedCertificate(dir);
  fs.writeFileSync(path.join(dir, 'enabled_plugins'), '[].\n');
  fs.writeFileSync(path.join(dir, 'rabbitmq.conf'), [
    `listeners.tcp.default = 127.0.0.1:${port}`,
    // AMQPS too, with a self-signed certificate (the handle's caFile).
    `listeners.ssl.default = 127.0.0.1:${tlsPort}`,
    `ssl_options.certfile = ${certificate.cert}`,
    `ssl_options.keyfile = ${certificate.key}`,
    'ssl_options.verify = verify_none',
    'ssl_options.fail_if_no_peer_cert = false',
    'loopback_users = none',
    // A small test machine: the default disk alarm (50 MB free) is fine,
    // but do not let a busy /tmp block publishers for memory.
    'vm_memory_high_watermark.relative = 0.8',
  ].join('\n') + '\n');
  const node = `outbox${port}@localhost`;
  const env = {
    HOME: dir, // .erlang.cookie
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq'),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
    RABBITMQ_PID_FILE: path.join(dir, 'rabbitmq.pid'),
  };
  // Its own epmd on its own port, as our child: the node registers there
  // and not with a machine-wide epmd on 4369.
  const epmd = new Broker({ name: 'epmd', dir, command: which('epmd'), args: ['-port', String(epmdPort), '-address', '127.0.0.1'],
                            env, port: epmdPort });
  await epmd.start();
  const broker = new Broker({ name: 'rabbitmq-server', dir, command: '/usr/lib/rabbitmq/bin/rabbitmq-server', args: [], env, port });
  const started = Date.now();
  await broker.start({ timeout: 60000 });
  const stopBroker = broker.stop.bind(broker);
  return Object.assign(broker, {
    url: `amqp://127.0.0.1:${port}`,
    tlsUrl: `amqps://127.0.0.1:${tlsPort}`,
    caFile: certificate.cert,
    amqpUrl: `amqp://guest:guest@127.0.0.1:${port}`,
    startupMs: Date.now() - started,
    epmd,
    // The node and then its epmd.
    async stop(options) {
      await stopBroker(options);
    },
    async close() {
      await stopBroker();
      await epmd.stop();
    },
  });
}

// Runs `fn(channel)` on a fresh amqplib connection to the broker.
// A node that has just started may accept a connection and reset it while
// it finishes booting: connecting is tried again for a while.
export async function withRabbitChannel(handle, fn, { timeoutMs = 30000 } = {}) {
  const amqp = await import('amqplib');
  const deadline = Date.now() + timeoutMs;
  let conn;
  for (;;) {
    try {
      conn = await amqp.connect(handle.amqpUrl);
      break;
    } catch (err) {
      if (Date.now() > deadline || !['ECONNRESET', 'ECONNREFUSED', 'EPIPE'].includes(err.code)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  conn.on('error', () => {});  // reported through the calls that fail
  try {
    const ch = await conn.createChannel();
    return await fn(ch);
  } finally {
    await conn.close();
  }
}

// Every message in a queue (taken off it): { id (message_id), type,
// headers, payload (text), persistent, routingKey, exchange }.
export async function rabbitQueueMessages(handle, queue) {
  return withRabbitChannel(handle, async (ch) => {
    const out = [];
    for (let m = await ch.get(queue, { noAck: true }); m; m = await ch.get(queue, { noAck: true })) {
      out.push({ id: m.properties.messageId, type: m.properties.type, headers: m.properties.headers ?? {},
                 payload: m.content.toString(), persistent: m.properties.deliveryMode === 2,
                 contentType: m.properties.contentType, routingKey: m.fields.routingKey, exchange: m.fields.exchange });
    }
    return out;
  });
}
