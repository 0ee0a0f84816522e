// The latency receiver: node:http on 127.0.0.1, records the time each
// webhook-id arrives (performance.now(), the clock the producer uses in the
// same process), verifies every Standard Webhooks signature it is given, and
// answers 204.
import crypto from 'node:crypto';
import http from 'node:http';

export const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const key = Buffer.from(SECRET.slice('whsec_'.length), 'base64');

function signatureValid(id, timestamp, body, header) {
  if (!header) return null;  // unsigned
  const expected = crypto.createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
  return header.split(' ').some((s) => s === `v1,${expected}`);
}

export function startReceiver() {
  const state = { receipts: new Map(), duplicates: 0, badSignatures: 0, unsigned: 0, requests: 0, waiters: [] };
  const server = http.createServer((req, res) => {
    const at = performance.now();
    const id = req.headers['webhook-id'];
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(204).end();
      state.requests++;
      if (!id) return;
      const ok = signatureValid(id, req.headers['webhook-timestamp'], Buffer.concat(chunks).toString(),
                                req.headers['webhook-signature']);
      if (ok === false) state.badSignatures++;
      if (ok === null) state.unsigned++;
      if (state.receipts.has(id)) state.duplicates++;
      else state.receipts.set(id, at);
    });
  });
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: server.address().port,
        state,
        reset() {
          state.receipts = new Map();
          state.duplicates = 0;
          state.badSignatures = 0;
          state.unsigned = 0;
          state.requests = 0;
        },
        close() {
          server.closeAllConnections();
          return new Promise((r) => server.close(r));
        },
      });
    });
  });
}
