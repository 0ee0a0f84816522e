// Drives build/unit/sink_tool (test/sink/sink_tool.cpp): one process, one
// sink (or several in one loop), messages in and outcomes out, as the worker
// drives its sinks. Builds it with cmake first when it is missing;
// OUTBOX_SINK_TOOL names another build (the sanitizer builds of scripts/test.sh).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

import { waitFor } from '../lib/brokers.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const toolPath = process.env.OUTBOX_SINK_TOOL ?? path.join(root, 'build/unit/sink_tool');

export function buildTool() {
  if (fs.existsSync(toolPath)) return;
  for (const args of [['-S', root, '-B', path.join(root, 'build/unit')], ['--build', path.join(root, 'build/unit'), '-j2', '--target', 'sink_tool']]) {
    const r = spawnSync('cmake', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cmake ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
  }
}

const enc = (v) => encodeURIComponent(String(v));

let nextTag = 1;
const tools = new Set();
process.on('exit', () => { for (const t of tools) t.child.kill('SIGKILL'); });

export function eventId(n) {
  return `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
}

export class SinkTool {
  // credentials: { user, password, token }, passed in the environment.
  // `url` may be an array: one sink each, in one loop (sendTo picks one).
  constructor(url, { allowed = '127.0.0.1/32', connectTimeout = 5000, credentials = {}, caFile, maxReply } = {}) {
    buildTool();
    const env = { ...process.env };
    if (credentials.user !== undefined) env.OUTBOX_SINK_USER = credentials.user;
    if (credentials.password !== undefined) env.OUTBOX_SINK_PASSWORD = credentials.password;
    if (credentials.token !== undefined) env.OUTBOX_SINK_TOKEN = credentials.token;
    this.child = spawn(toolPath, [...[url].flat(), '--allowed', allowed, '--connect-timeout', String(connectTimeout),
                                  ...(caFile ? ['--ca-file', caFile] : []),
                                  ...(maxReply ? ['--max-reply', String(maxReply)] : [])],
                       { env, stdio: ['pipe', 'pipe', 'pipe'] });
    // A test that fails before close() must not hang its file on a live
    // sink_tool: it does not keep Node running, and dies with it.
    this.child.unref();
    for (const stream of [this.child.stdin, this.child.stdout, this.child.stderr]) stream.unref?.();
    tools.add(this);
    this.stderr = '';
    this.child.stderr.on('data', (d) => { this.stderr += d; });
    this.waiting = new Map(); // tag -> resolve
    this.benches = [];
    this.memories = [];
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => {
      // Whatever still waits learns why instead of hanging.
      const why = new Error(`sink_tool exited (${code ?? signal}) with messages in flight: ${this.stderr}`);
      for (const [, w] of this.waiting) w.reject(why);
      for (const b of [...this.benches, ...this.memories]) b.reject(why);
      this.waiting.clear();
      tools.delete(this);
      resolve(code ?? signal);
    }));
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      const o = JSON.parse(line);
      if (o.bench) return this.benches.shift()?.resolve(o);
      if (o.memory) return this.memories.shift()?.resolve(o);
      const w = this.waiting.get(o.tag);
      this.waiting.delete(o.tag);
      w?.resolve(o);
    });
  }

  // Resolves with the outcome: { tag, acked, status, refused, us, error }.
  send(message) {
    return this.sendTo(0, message);
  }

  // To the sink of the n-th URL.
  sendTo(n, { id, topic = 'order.created', key = null, payload = '{}', headers = {}, timeout = 5000 }) {
    const tag = nextTag++;
    // Percent-encoded fields (none may be empty); "-" is the NULL key.
    const fields = ['sendto', n, tag, enc(id), enc(topic), key === null ? '-' : key === '-' ? '%2D' : enc(key), timeout,
                    enc(payload)];
    for (const [name, value] of Object.entries(headers)) fields.push(enc(name), enc(value));
    const line = fields.join(' ') + '\n';
    const done = new Promise((resolve, reject) => this.waiting.set(tag, { resolve, reject }));
    this.child.stdin.write(line);
    return done;
  }

  bench({ count, inFlight, payloadBytes = 200, timeout = 30000 }) {
    const done = new Promise((resolve, reject) => this.benches.push({ resolve, reject }));
    this.child.stdin.write(`bench ${count} ${inFlight} ${payloadBytes} ${timeout}\n`);
    return done;
  }

  // { anon_kb, peak_anon_kb (since the last call), heap_bytes }: see sink_tool.cpp.
  memory() {
    const done = new Promise((resolve, reject) => this.memories.push({ resolve, reject }));
    this.child.stdin.write('memory\n');
    return done;
  }

  async close() {
    this.child.stdin.end();
    const code = await this.exited;
    if (code !== 0) throw new Error(`sink_tool exited ${code}: ${this.stderr}`);
  }
}

// A broker lost with messages in flight: it is paused (its connections stay
// open, nothing is answered), three messages are sent, it is killed; then
// it is started again and messages are sent until one is acknowledged (the
// first may meet the sink's reconnect backoff). Returns the outcomes of
// the three and of the one acknowledged after the restart. `afterStart`
// runs once the broker is back (e.g. to declare what a consumer would).
export async function loseBrokerMidStream(broker, sink, firstId, { startTimeout = 30000, afterStart } = {}) {
  await broker.pause();
  const inFlight = [1, 2, 3].map((i) => sink.send({ id: eventId(firstId + i), timeout: 30000 }));
  await new Promise((r) => setTimeout(r, 200));
  await broker.kill();
  const lost = await Promise.all(inFlight);
  await broker.start({ timeout: startTimeout });
  await afterStart?.();
  const later = await waitFor(async () => {
    const o = await sink.send({ id: eventId(firstId + 10) });
    return o.acked ? o : false;
  }, { timeout: startTimeout, interval: 300, message: 'a publish after the restart' });
  return { lost, later };
}
