// A real webhook receiver for end-to-end tests: node:http on a loopback
// address, every request verified with the `standardwebhooks` package and
// recorded with its raw body. Tests choose the answers. Also a CLI (the
// demo's receiver): see runCli() at the end.
import { realpathSync } from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Webhook } from 'standardwebhooks';

import { waitFor } from './cluster.mjs';

// respond(request) -> { status = 204, headers = {}, body = '', delay = 0 }
// `secrets`: keys to verify with; each request records whether each verifies.
export async function startSink({ host = '127.0.0.1', port = 0, secrets = [], respond } = {}) {
  const sink = {
    host,
    port,
    requests: [],
    byIdIndex: new Map(),  // webhook-id -> records, kept as requests arrive
    respond: respond || (() => ({ status: 204 })),
    answers: [],  // queued answers, used in order before respond() is asked
    server: null,
    sockets: new Set(),
    get url() {
      return `http://${host}:${sink.port}/hook`;
    },
    // Distinct webhook-ids received.
    ids() {
      return new Set(sink.byIdIndex.keys());
    },
    byId(id) {
      return sink.byIdIndex.get(id) || [];
    },
    // Forgets what was received and the queued answers (tests reuse a sink).
    clear() {
      sink.requests.length = 0;
      sink.byIdIndex.clear();
      sink.answers.length = 0;
    },
    // The next requests get these answers, in order; then respond() again.
    queue(...answers) {
      sink.answers.push(...answers);
    },
    async waitForIds(ids, { timeout = 30000 } = {}) {
      const wanted = [...ids];
      await waitFor(() => wanted.every((id) => sink.byIdIndex.has(id)), {
        timeout,
        message: `${wanted.length} webhook ids at ${sink.url} (have ${sink.byIdIndex.size})`,
      });
    },
    async waitForCount(n, { timeout = 30000 } = {}) {
      await waitFor(() => sink.requests.length >= n, { timeout, message: `${n} requests at ${sink.url} (have ${sink.requests.length})` });
    },
    async listen() {
      sink.server = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', async () => {
          const raw = Buffer.concat(chunks);
          const body = raw.toString('utf8');
          const headers = { ...req.headers };
          const record = {
            id: headers['webhook-id'],
            timestamp: headers['webhook-timestamp'],
            signature: headers['webhook-signature'],
            headers,
            path: req.url,
            method: req.method,
            raw,
            body,
            receivedAt: Date.now(),
            receivedAtNs: process.hrtime.bigint(),
            error: null,  // why verification failed, with the first secret that failed
            verifiedWith: [],
          };
          for (const secret of secrets) {
            try {
              new Webhook(secret).verify(body, headers);
              record.verifiedWith.push(true);
            } catch (err) {
              record.error ??= err.message;
              record.verifiedWith.push(false);
            }
          }
          record.verified = record.verifiedWith.length > 0 && record.verifiedWith.every(Boolean);
          sink.requests.push(record);
          if (!sink.byIdIndex.has(record.id)) sink.byIdIndex.set(record.id, []);
          sink.byIdIndex.get(record.id).push(record);
          const queued = sink.answers.shift();
          const answer = { status: 204, headers: {}, body: '', delay: 0, ...(queued ?? await sink.respond(record)) };
          if (answer.delay) await new Promise((resolve) => setTimeout(resolve, answer.delay));
          if (answer.destroy) {
            req.socket.destroy();
            return;
          }
          res.writeHead(answer.status, answer.headers);
          res.end(answer.body);
        });
      });
      sink.server.keepAliveTimeout = 60000;
      sink.server.on('connection', (socket) => {
        sink.sockets.add(socket);
        socket.on('close', () => sink.sockets.delete(socket));
      });
      await new Promise((resolve, reject) => {
        sink.server.once('error', reject);
        sink.server.listen(sink.port, host, resolve);
      });
      sink.port = sink.server.address().port;
    },
    // Stops listening and drops every connection: the receiver is down.
    async down() {
      for (const socket of sink.sockets) socket.destroy();
      await new Promise((resolve) => sink.server.close(resolve));
      sink.server = null;
    },
    async up() {
      await sink.listen();
    },
    async close() {
      if (sink.server) await sink.down();
    },
  };
  await sink.listen();
  return sink;
}

export const TEST_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

// CLI (the demo's receiver): one line per webhook received.
//   node test/lib/sink.mjs --port 8787 --secret whsec_... [--host 127.0.0.1] [--status 204]
function runCli() {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8787' },
      secret: { type: 'string', multiple: true, default: [] },
      status: { type: 'string', default: '204' },
    },
  });
  const status = Number(values.status);
  return startSink({
    host: values.host,
    port: Number(values.port),
    secrets: values.secret,
    respond: (r) => {
      const time = new Date(r.receivedAt).toISOString().slice(11, 23);
      const check = values.secret.length === 0 ? '?' : r.verified ? '✓' : '✗';
      const topic = r.headers['x-topic'] ?? r.headers['x-event-type'] ?? r.headers['webhook-topic'];
      const why = r.verified || values.secret.length === 0 ? '' : `  (${r.error ?? 'not verified'})`;
      console.log(`  ${time}  ${check} ${r.id}${topic ? `  ${topic}` : ''}  ${r.body}${why}`);
      return { status };
    },
  }).then((sink) => {
    const verifying = values.secret.length ? 'verifying signatures' : 'no secret given: signatures not checked';
    console.log(`  receiver listening on ${sink.url} (${verifying}; answers ${status})`);
    const stop = () => sink.close().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

function runAsScript() {
  try {
    return realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;  // no script path (node -e, a REPL)
  }
}

if (runAsScript()) await runCli();
