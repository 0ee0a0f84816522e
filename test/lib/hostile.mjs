// Hostile peers on loopback (issue 22): HTTP servers, TLS ports and fake
// NATS, AMQP and Redis servers that misbehave on purpose (garbage, header
// and body bombs, 1xx loops, silence, one byte a second, redirects,
// resets, oversized, truncated and endless frames, error floods, stalled
// handshakes). Each is a node net server on 127.0.0.1 with a URL an
// endpoint can be created with. The bytes a peer streams are capped per
// connection (and some per peer), so that a worker that buffers them all
// costs this machine a bounded amount; a peer stops writing when the
// worker closes the connection.
//
//   const set = await startHostilePeers();      (in a child process)
//   for (const p of set.peers) create_endpoint(p.name, p.url, ...)
//   await set.stats()    { trap: requests at the redirect target (must stay 0),
//                          connections: { name: connections accepted } }
//   await set.close();
//
// Redirects only ever name the metadata address in a Location header;
// nothing here connects anywhere.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

import { procStat } from './proc.mjs';

const MiB = 1024 * 1024;

// Writes what `next()` returns (a Buffer, or null when done) while the
// socket takes it, waiting for 'drain', until `cap` bytes or the socket
// closes; then ends the socket when `end` is set.
async function stream(socket, next, { cap, end = true } = {}) {
  let sent = 0;
  while (!socket.destroyed && sent < cap) {
    const chunk = next(sent);
    if (!chunk) break;
    sent += chunk.length;
    if (!socket.write(chunk)) {
      const go = await new Promise((resolve) => {
        const onDrain = () => { socket.off('close', onClose); resolve(true); };
        const onClose = () => { socket.off('drain', onDrain); resolve(false); };
        socket.once('drain', onDrain);
        socket.once('close', onClose);
      });
      if (!go) return sent;
    }
  }
  if (end && !socket.destroyed) socket.end();
  return sent;
}

// One byte of `text` a second, in a loop, until the socket closes.
function drip(socket, text) {
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed) return clearInterval(timer);
    socket.write(text[i++ % text.length]);
  }, 1000);
  socket.once('close', () => clearInterval(timer));
}

// Garbage that is no protocol's: seeded, the same in every run.
function garbage(size, seed = 22) {
  const out = Buffer.alloc(size);
  let a = seed >>> 0;
  for (let i = 0; i < size; i++) {
    a = (Math.imul(a, 1103515245) + 12345) >>> 0;
    out[i] = a >>> 24;
  }
  return out;
}

// A 64 kB block of `unit` (text or bytes) repeated, for stream().
const repeat = (unit) => {
  const one = Buffer.from(unit);
  const block = Buffer.concat(Array(Math.max(1, Math.floor(65536 / one.length))).fill(one));
  return () => block;
};

// Runs `answer(socket)` once the first bytes of a request arrived (an HTTP
// client or a TLS ClientHello speaks first).
const onRequest = (answer) => (socket) => socket.once('data', () => answer(socket));

// ---------------------------------------------------------------- HTTP and TLS

function httpPeers(trapPort) {
  const ok = 'HTTP/1.1 200 OK\r\n';
  return [
    { name: 'http-garbage', scheme: 'http', why: 'random bytes instead of a response',
      connection: onRequest((s) => s.end(garbage(4096))) },
    { name: 'http-header-bomb', scheme: 'http', why: '200, then 1 kB headers without end (8 MiB)',
      connection: onRequest((s) => { s.write(ok); stream(s, repeat(`x-bomb: ${'a'.repeat(1000)}\r\n`), { cap: 8 * MiB }); }) },
    { name: 'http-header-count', scheme: 'http', why: '500, then a million tiny headers',
      connection: onRequest((s) => {
        s.write('HTTP/1.1 500 Internal Server Error\r\n');
        stream(s, repeat('x: y\r\n'), { cap: 6 * MiB });
      }) },
    { name: 'http-status-line-bomb', scheme: 'http', why: 'a status line that never ends (8 MiB)',
      connection: onRequest((s) => { s.write('HTTP/1.1 200 '); stream(s, repeat('A'), { cap: 8 * MiB }); }) },
    { name: 'http-invalid-status', scheme: 'http', why: 'an invalid status line',
      connection: onRequest((s) => s.end('HTTP/1.1 2x0 OK\r\ncontent-length: 0\r\n\r\n')) },
    { name: 'http-endless-body', scheme: 'http', why: '500 with a chunked body without end (64 MiB)',
      connection: onRequest((s) => {
        s.write('HTTP/1.1 500 Internal Server Error\r\ntransfer-encoding: chunked\r\n\r\n');
        stream(s, repeat(`4000\r\n${'b'.repeat(0x4000)}\r\n`), { cap: 64 * MiB });
      }) },
    { name: 'http-broken-chunked', scheme: 'http', why: '200 with a chunk size that is no number',
      connection: onRequest((s) => s.end(`${ok}transfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`)) },
    { name: 'http-continue-flood', scheme: 'http', why: '100 Continue without end (a 1xx loop)',
      connection: onRequest((s) => stream(s, repeat('HTTP/1.1 100 Continue\r\n\r\n'), { cap: 16 * MiB })) },
    { name: 'http-processing-loop', scheme: 'http', why: '102 Processing with headers, again and again',
      connection: onRequest((s) => stream(s, repeat('HTTP/1.1 102 Processing\r\nx-wait: 1\r\n\r\n'), { cap: 16 * MiB })) },
    { name: 'http-silent', scheme: 'http', why: 'reads the request, never answers',
      connection: () => {} },
    { name: 'http-drip', scheme: 'http', why: 'a 204, one byte a second',
      connection: onRequest((s) => drip(s, 'HTTP/1.1 204 No Content\r\n\r\n')) },
    { name: 'http-redirect-loopback', scheme: 'http', why: '302 to a loopback receiver', redirect: true,
      connection: onRequest((s) => s.end(`HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:${trapPort}/hook\r\ncontent-length: 0\r\n\r\n`)) },
    { name: 'http-redirect-metadata', scheme: 'http', why: '307 to the cloud metadata address', redirect: true,
      connection: onRequest((s) => s.end('HTTP/1.1 307 Temporary Redirect\r\n' +
                                         'location: http://169.254.169.254/latest/meta-data/iam/security-credentials/\r\n' +
                                         'content-length: 0\r\n\r\n')) },
    { name: 'http-close-mid-body', scheme: 'http', why: 'HTTP/1.0 200, closed 100 bytes into a 100 kB body',
      connection: onRequest((s) => s.end(`HTTP/1.0 200 OK\r\ncontent-length: 100000\r\n\r\n${'c'.repeat(100)}`)) },
    { name: 'http-rst', scheme: 'http', why: 'RST on accept',
      connection: (s) => s.resetAndDestroy() },
    { name: 'tls-garbage', scheme: 'https', why: 'random bytes instead of a ServerHello',
      connection: onRequest((s) => s.end(garbage(4096, 7))) },
    { name: 'tls-slow-handshake', scheme: 'https', why: 'a TLS record header, one byte a second',
      connection: onRequest((s) => drip(s, '\x16\x03\x03\x40\x00')) },
  ];
}

// ---------------------------------------------------------------- NATS

const natsInfo = (extra = {}) => `INFO ${JSON.stringify({
  server_id: 'HOSTILE', server_name: 'hostile', version: '2.10.0', proto: 1, headers: true, max_payload: 1048576,
  host: '127.0.0.1', port: 4222, ...extra,
})}\r\n`;

// Reads a NATS client's protocol (CONNECT, PING, SUB, PUB, HPUB with their
// payloads) and calls on(verb, args) for each; PING is answered.
function natsClient(socket, on) {
  let buffer = Buffer.alloc(0);
  let skip = 0;  // payload bytes still to skip
  socket.on('data', (data) => {
    buffer = Buffer.concat([buffer, data]);
    for (;;) {
      if (skip > 0) {
        const n = Math.min(skip, buffer.length);
        buffer = buffer.subarray(n);
        skip -= n;
        if (skip > 0) return;
      }
      const eol = buffer.indexOf('\r\n');
      if (eol < 0) return;
      const line = buffer.subarray(0, eol).toString();
      buffer = buffer.subarray(eol + 2);
      const [verb, ...args] = line.trim().split(/\s+/);
      if (verb === 'PUB') skip = Number(args.at(-1)) + 2;
      if (verb === 'HPUB') skip = Number(args.at(-1)) + 2;
      if (verb === 'PING') socket.write('PONG\r\n');
      on(verb, args);
    }
  });
}

// A NATS server with a proper handshake that calls answer(socket, reply
// subject, sid of the client's reply subscription) for each publish.
function onPublish(answer) {
  return (s) => {
    s.write(natsInfo());
    let sid = '1';
    natsClient(s, (verb, args) => {
      if (verb === 'SUB') sid = args.at(-1);
      if (verb === 'HPUB' || verb === 'PUB') answer(s, args[1], sid);
    });
  };
}

function natsPeers() {
  let bigMessages = 3;  // 100 MiB each, for the peer's whole life
  return [
    { name: 'nats-garbage', scheme: 'nats', why: 'random bytes instead of INFO',
      connection: (s) => s.write(garbage(4096, 3)) },
    { name: 'nats-bad-info', scheme: 'nats', why: 'INFO that is no JSON',
      connection: (s) => s.write('INFO {"server_id": "x", "max_payload": [}}}\r\n') },
    { name: 'nats-endless-info', scheme: 'nats', why: 'an INFO line without end (64 MiB)',
      connection: (s) => { s.write('INFO {"server_id":"'); stream(s, repeat('i'), { cap: 64 * MiB, end: false }); } },
    { name: 'nats-stall', scheme: 'nats', why: 'accepts, says nothing',
      connection: () => {} },
    { name: 'nats-err-flood', scheme: 'nats', why: 'INFO, then -ERR without end',
      connection: (s) => {
        s.write(natsInfo());
        s.once('data', () => stream(s, repeat("-ERR 'Unknown Protocol Operation'\r\n"), { cap: 16 * MiB }));
      } },
    { name: 'nats-big-msg', scheme: 'nats', why: 'answers a publish with a 100 MiB MSG',
      connection: onPublish((s, reply, sid) => {
        if (bigMessages <= 0) return;  // silent from now on: the publish times out
        bigMessages--;
        const size = 100 * MiB;
        s.write(`MSG ${reply} ${sid} ${size}\r\n`);
        stream(s, repeat('{'), { cap: size, end: false }).then(() => s.destroyed || s.write('\r\n'));
      }) },
    { name: 'nats-truncated', scheme: 'nats', why: 'answers a publish with half a MSG, then closes',
      connection: onPublish((s, reply, sid) => s.end(`MSG ${reply} ${sid} 1000\r\n{"stream":`)) },
  ];
}

// ---------------------------------------------------------------- AMQP 0-9-1

function amqpFrame(type, channel, payload) {
  const head = Buffer.alloc(7);
  head.writeUInt8(type, 0);
  head.writeUInt16BE(channel, 1);
  head.writeUInt32BE(payload.length, 3);
  return Buffer.concat([head, payload, Buffer.from([0xce])]);
}

function amqpMethod(channel, classId, methodId, args = Buffer.alloc(0)) {
  const ids = Buffer.alloc(4);
  ids.writeUInt16BE(classId, 0);
  ids.writeUInt16BE(methodId, 2);
  return amqpFrame(1, channel, Buffer.concat([ids, args]));
}

const shortstr = (s) => Buffer.concat([Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)]);
const longstr = (s) => {
  const n = Buffer.alloc(4);
  n.writeUInt32BE(Buffer.byteLength(s));
  return Buffer.concat([n, Buffer.from(s)]);
};

// connection.start: version 0-9, no server properties, PLAIN.
const amqpStart = () => amqpMethod(0, 10, 10, Buffer.concat([Buffer.from([0, 9, 0, 0, 0, 0]), longstr('PLAIN'), longstr('en_US')]));

// A broker that completes the handshake (start, tune, open, channel.open,
// confirm.select) and then calls `published(socket)` at the first publish.
function amqpHandshake(socket, published) {
  let buffer = Buffer.alloc(0);
  let header = false;
  let done = false;
  socket.on('data', (data) => {
    buffer = Buffer.concat([buffer, data]);
    if (!header) {
      if (buffer.length < 8) return;
      buffer = buffer.subarray(8);
      header = true;
      socket.write(amqpStart());
    }
    while (buffer.length >= 7) {
      const size = buffer.readUInt32BE(3);
      if (buffer.length < size + 8) return;
      const type = buffer.readUInt8(0);
      const channel = buffer.readUInt16BE(1);
      const payload = buffer.subarray(7, 7 + size);
      buffer = buffer.subarray(size + 8);
      if (type !== 1) continue;
      const method = `${payload.readUInt16BE(0)}.${payload.readUInt16BE(2)}`;
      const tune = Buffer.alloc(8);
      tune.writeUInt16BE(2047, 0);
      tune.writeUInt32BE(131072, 2);
      const answers = {
        '10.11': () => amqpMethod(0, 10, 30, tune),                  // start-ok -> tune
        '10.40': () => amqpMethod(0, 10, 41, shortstr('')),           // open -> open-ok
        '20.10': () => amqpMethod(channel, 20, 11, longstr('')),      // channel.open -> open-ok
        '85.10': () => amqpMethod(channel, 85, 11),                   // confirm.select -> select-ok
      };
      if (answers[method]) socket.write(answers[method]());
      if (method === '60.40' && !done) {
        done = true;
        published(socket);
      }
    }
  });
}

function amqpPeers() {
  const oversized = Buffer.from([1, 0, 0, 0xff, 0xff, 0xff, 0xf0]);  // a method frame of 4 GiB
  return [
    { name: 'amqp-garbage', scheme: 'amqp', why: 'random bytes instead of connection.start',
      connection: onRequest((s) => s.write(garbage(4096, 5))) },
    { name: 'amqp-stall', scheme: 'amqp', why: 'reads the protocol header, says nothing',
      connection: () => {} },
    { name: 'amqp-truncated', scheme: 'amqp', why: 'half a connection.start, then silence',
      connection: onRequest((s) => s.write(amqpStart().subarray(0, 12))) },
    { name: 'amqp-truncated-close', scheme: 'amqp', why: 'half a connection.start, then closes',
      connection: onRequest((s) => s.end(amqpStart().subarray(0, 12))) },
    { name: 'amqp-oversized', scheme: 'amqp', why: 'a 4 GiB frame instead of connection.start',
      connection: onRequest((s) => { s.write(oversized); stream(s, repeat('o'), { cap: 16 * MiB, end: false }); }) },
    { name: 'amqp-oversized-later', scheme: 'amqp', why: 'handshake, then a 4 GiB frame at the first publish',
      connection: (s) => amqpHandshake(s, () => { s.write(oversized); stream(s, repeat('o'), { cap: 16 * MiB, end: false }); }) },
    { name: 'amqp-blocked-flood', scheme: 'amqp', why: 'handshake, then connection.blocked without end',
      connection: (s) => amqpHandshake(s, () => stream(s, repeat(amqpMethod(0, 10, 60, shortstr('hostile'))),
                                                       { cap: 16 * MiB, end: false })) },
  ];
}

// ---------------------------------------------------------------- Redis

function redisPeers() {
  return [
    { name: 'redis-big-bulk', scheme: 'redis', why: '$2147483647, then bytes (256 MiB a connection)',
      connection: onRequest((s) => { s.write('$2147483647\r\n'); stream(s, repeat('r'), { cap: 256 * MiB }); }) },
    // hiredis 0.14 allocates the array of an array reply (8 bytes an
    // element) when its header arrives: *2147483647 made it take 16 GiB.
    // 20 million elements is 160 MB: over the bound, and safe for the
    // machine when the bound does not hold.
    { name: 'redis-huge-array', scheme: 'redis', why: '*20000000, then integers (8 MiB a connection)',
      connection: onRequest((s) => { s.write('*20000000\r\n'); stream(s, repeat(':1\r\n'), { cap: 8 * MiB, end: false }); }) },
    { name: 'redis-garbage', scheme: 'redis', why: 'bytes that are no RESP',
      connection: onRequest((s) => s.write(Buffer.concat([Buffer.from('!!garbage\r\n'), garbage(1024, 9)]))) },
    { name: 'redis-error-flood', scheme: 'redis', why: '-ERR without end',
      connection: onRequest((s) => stream(s, repeat('-ERR hostile\r\n'), { cap: 16 * MiB, end: false })) },
    { name: 'redis-extra-replies', scheme: 'redis', why: 'a reply before any command, then two to each',
      connection: (s) => { s.write('+OK\r\n'); s.on('data', () => s.write('-ERR no\r\n:1\r\n')); } },
    { name: 'redis-deep-nesting', scheme: 'redis', why: 'arrays nested 100,000 deep',
      connection: onRequest((s) => s.write('*1\r\n'.repeat(100000))) },
    { name: 'redis-stall', scheme: 'redis', why: 'accepts, never answers',
      connection: () => {} },
    { name: 'redis-truncated', scheme: 'redis', why: 'half a bulk reply, then closes',
      connection: onRequest((s) => s.end('$10\r\nabc')) },
  ];
}

// ---------------------------------------------------------------- the set

function urlOf(scheme, port, name) {
  switch (scheme) {
    case 'http':
    case 'https': return `${scheme}://127.0.0.1:${port}/hook`;
    case 'nats': return `nats://127.0.0.1:${port}/hostile.{topic}`;
    case 'amqp': return `amqp://127.0.0.1:${port}/%2F?routing_key=${name}`;
    case 'redis': return `redis://127.0.0.1:${port}/${name}`;
    default: throw new Error(`no URL for ${scheme}`);
  }
}

async function listen(handler) {
  const sockets = new Set();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});  // the worker resets what it gives up on
    handler(socket);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: server.address().port,
    accepted: () => accepted,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

// Starts every peer, and the trap: the loopback receiver the redirect
// points to, which counts what reaches it (nothing may). `only`: names or
// name prefixes ("redis" for redis-*) of the peers to start.
async function servePeers({ only } = {}) {
  const trap = { requests: 0 };
  const trapServer = await listen(onRequest((s) => {
    trap.requests++;
    s.end('HTTP/1.1 204 No Content\r\n\r\n');
  }));
  const servers = [trapServer];
  const peers = [];
  try {
    for (const peer of [...httpPeers(trapServer.port), ...natsPeers(), ...amqpPeers(), ...redisPeers()]) {
      if (only && !only.some((o) => peer.name === o || peer.name.startsWith(`${o}-`))) continue;
      const server = await listen(peer.connection);
      servers.push(server);
      peers.push({ name: peer.name, scheme: peer.scheme, why: peer.why, redirect: Boolean(peer.redirect),
                   url: urlOf(peer.scheme, server.port, peer.name), accepted: server.accepted });
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.close()));
    throw err;
  }
  return {
    peers,
    stats: () => ({ trap: trap.requests, connections: Object.fromEntries(peers.map((p) => [p.name, p.accepted()])) }),
    close: () => Promise.all(servers.map((s) => s.close())),
  };
}

// The peers run in a child process of their own, so that what they do (64
// MiB streams, floods) delays neither the healthy receiver nor the test's
// clock in this one. Returns { peers, stats(), close() }; stats() resolves
// to { trap (requests at the redirect target), connections: { name: n } }.
export async function startHostilePeers({ only } = {}) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), ...(only ? [only.join(',')] : [])],
                      { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout });
  const waiting = [];
  const exited = new Promise((resolve) => child.once('exit', resolve));
  lines.on('line', (line) => waiting.shift()?.resolve(JSON.parse(line)));
  child.once('exit', (code) => { for (const w of waiting.splice(0)) w.reject(new Error(`hostile peers exited (${code})`)); });
  const next = () => new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  const { peers } = await next();
  return {
    peers,
    stats() {
      const reply = next();
      child.stdin.write('stats\n');
      return reply;
    },
    async close() {
      child.stdin.end();
      await exited;
    },
  };
}

// The child: `node hostile.mjs [only,...]` prints the peers as one JSON
// line, answers each "stats" line of stdin with one, and stops at the end
// of stdin (when the parent goes, too).
if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  const set = await servePeers({ only: process.argv[2]?.split(',') });
  process.stdout.write(`${JSON.stringify({ peers: set.peers.map(({ accepted, ...p }) => p) })}\n`);
  const input = readline.createInterface({ input: process.stdin });
  input.on('line', (line) => {
    if (line === 'stats') process.stdout.write(`${JSON.stringify(set.stats())}\n`);
  });
  input.on('close', async () => {
    await set.close();
    process.exit(0);
  });
}

// Private memory of a process in KiB (Private_Clean + Private_Dirty of
// /proc/<pid>/smaps_rollup): what it allocated itself, without the pages of
// shared_buffers it touched. null when the process is gone.
export function privateKiB(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
    return field('Private_Clean') + field('Private_Dirty');
  } catch {
    return null;
  }
}

// CPU time a process used (user + system), in seconds; null when gone.
export function cpuSeconds(pid) {
  const fields = procStat(pid);
  return fields && (Number(fields[11]) + Number(fields[12])) / 100;  // utime, stime in clock ticks (USER_HZ 100)
}

// Samples privateKiB(pid) every `intervalMs` until stop(), which returns
// { first, peak, last, samples }.
export function sampleMemory(pid, { intervalMs = 100 } = {}) {
  const samples = [];
  const take = () => {
    const kib = privateKiB(pid);
    if (kib !== null) samples.push(kib);
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return { first: samples[0], peak: Math.max(...samples), last: samples.at(-1), samples: samples.length };
    },
  };
}

// What a process was doing, sampled every `intervalMs` until stop(): the
// kernel's view (/proc/PID: state, wchan: where it sleeps) and, through
// `query`, PostgreSQL's (pg_stat_activity: state, wait event, when its
// transaction began). stop() returns the longest stretches in which
// nothing of that changed, longest first: where a stalled worker was
// stuck, should the healthy endpoint's latency say it was.
export function sampleStates(pid, query, { intervalMs = 20, keep = 3 } = {}) {
  const runs = [];
  let current = null;
  let pending = false;
  let pgView = '';
  const kernelView = () => {
    try {
      return `${procStat(pid)[0]} in ${fs.readFileSync(`/proc/${pid}/wchan`, 'utf8') || 'user space'}`;
    } catch {
      return 'gone';
    }
  };
  const close = (at) => {
    if (current) runs.push({ what: current.what, ms: at - current.since });
    current = null;
  };
  const take = () => {
    const now = performance.now();
    const what = `${kernelView()}; ${pgView}`;
    if (current?.what !== what) {
      close(now);
      current = { what, since: now };
    }
    if (pending) return;
    pending = true;
    query(`SELECT state, wait_event_type, wait_event, xact_start FROM pg_stat_activity WHERE pid = $1`, [pid])
      .then(({ rows: [r] }) => {
        pgView = r ? `${r.state}, wait ${r.wait_event_type ?? '-'}:${r.wait_event ?? '-'}` +
                     `${r.xact_start ? `, transaction from ${r.xact_start.toISOString().slice(11, 23)}` : ''}` : 'no row';
      })
      .catch(() => { pgView = 'unknown'; })
      .finally(() => { pending = false; });
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      close(performance.now());
      return runs.sort((a, b) => b.ms - a.ms).slice(0, keep);
    },
  };
}

// Creates an endpoint for each peer, subscribed to `topics`; each delivery
// gets `maxAttempts` attempts of at most `timeout`.
export async function createHostileEndpoints(query, peers, { topics = '{*}', maxAttempts = 1, timeout = '1s' } = {}) {
  for (const p of peers) {
    await query(`SELECT outbox.create_endpoint($1, $2, topics => $3::text[], max_attempts => $4, timeout => $5::interval,
                                                retry_base => '100ms', retry_max => '200ms')`,
                [p.name, p.url, topics, maxAttempts, timeout]);
  }
}

// Commits `count` events of `topic`, one transaction each (an autocommit
// enqueue: its reply comes after COMMIT), one every `intervalMs`, and notes
// clock() when each reply arrives. Returns Map event id -> commit time.
export async function commitEvents(client, { count, intervalMs, topic = 'healthy.event', clock = () => performance.now() }) {
  const commits = new Map();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const wait = t0 + i * intervalMs - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const { rows } = await client.query("SELECT outbox.enqueue($1, jsonb_build_object('i', $2::int))::text AS id", [topic, i]);
    commits.set(rows[0].id, clock());
  }
  return commits;
}

// Percentiles (nearest rank) of commit-to-arrival latencies: `arrival(id)`
// gives an event's arrival on the clock of commitEvents, or undefined (an
// event that never arrived counts as infinitely late).
export function latencySummary(commits, arrival) {
  const ms = [];
  let missing = 0;
  for (const [id, committed] of commits) {
    const at = arrival(id);
    if (at === undefined) missing++;
    ms.push(at === undefined ? Infinity : at - committed);
  }
  ms.sort((a, b) => a - b);
  const pct = (p) => (ms.length ? ms[Math.min(ms.length - 1, Math.ceil((p / 100) * ms.length) - 1)] : NaN);
  return { count: ms.length - missing, missing, p50: pct(50), p99: pct(99), max: ms.at(-1) ?? NaN };
}
