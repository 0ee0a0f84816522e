// A polling relay of the kind users write today, for comparison: a
// node-postgres loop that every second (at once while batches come back
// full) takes up to 100 unpublished rows of plain_outbox FOR UPDATE SKIP
// LOCKED, POSTs each with fetch, signed like Standard Webhooks, and marks
// them published, holding the transaction open across the HTTP calls.
//
//   RELAY_URL=http://127.0.0.1:PORT/ PGHOST=... PGPORT=... node bench/polling-relay.mjs
//
// Runs until SIGTERM, or RELAY_MAX_SECONDS (default 3600).
import crypto from 'node:crypto';
import pg from 'pg';

const url = process.env.RELAY_URL;
const pollMs = Number(process.env.RELAY_POLL_MS ?? 1000);
const batch = Number(process.env.RELAY_BATCH ?? 100);
const maxSeconds = Number(process.env.RELAY_MAX_SECONDS ?? 3600);
const secret = process.env.RELAY_SECRET ?? 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
if (!url || !/^http:\/\/127\.\d+\.\d+\.\d+[:/]/.test(url)) {
  console.error('RELAY_URL must be an http:// URL on a loopback address');
  process.exit(2);
}
const key = Buffer.from(secret.slice('whsec_'.length), 'base64');

let stopping = false;
process.on('SIGTERM', () => { stopping = true; });
process.on('SIGINT', () => { stopping = true; });

const client = new pg.Client({ database: process.env.PGDATABASE ?? 'bench', user: process.env.PGUSER ?? 'postgres' });
await client.connect();
const deadline = Date.now() + maxSeconds * 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

while (!stopping && Date.now() < deadline) {
  await client.query('BEGIN');
  const { rows } = await client.query(
    `SELECT id, topic, key, payload::text AS payload FROM plain_outbox
     WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, [batch]);
  const sent = [];
  for (const row of rows) {
    const id = String(row.id);
    const timestamp = Math.floor(Date.now() / 1000);
    const signature = crypto.createHmac('sha256', key).update(`${id}.${timestamp}.${row.payload}`).digest('base64');
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(timestamp),
                   'webhook-signature': `v1,${signature}` },
        body: row.payload,
      });
      await res.arrayBuffer();
      if (res.ok) sent.push(row.id);
    } catch {
      // left unpublished: the next poll retries it
    }
  }
  await client.query(
    `UPDATE plain_outbox SET attempts = attempts + 1,
            published_at = CASE WHEN id = ANY($2::bigint[]) THEN now() END
     WHERE id = ANY($1::bigint[])`, [rows.map((r) => r.id), sent]);
  await client.query('COMMIT');
  if (rows.length < batch) await sleep(pollMs);
}
await client.end();
