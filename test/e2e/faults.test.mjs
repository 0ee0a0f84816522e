// Faults at the receiver: connections reset mid-response, TLS with a
// certificate the worker does not trust (until its CA is configured), a
// receiver that hangs (the worker holds no transaction and no snapshot
// meanwhile), and the URL and secret changed by a reload mid-stream.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { waitFor } from '../lib/cluster.mjs';
import { startWithReceiver } from '../lib/setup.mjs';
import { startSink, TEST_SECRET } from '../lib/sink.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

describe('faults at the receiver', () => {
  let cluster;
  let sink;

  let env;

  before(async () => {
    env = await startWithReceiver();
    ({ cluster, sink } = env);
  });
  after(async () => env?.destroy());

  async function enqueue(payload = {}) {
    return (await cluster.query("SELECT outbox.enqueue('fault', $1::jsonb) AS id", [JSON.stringify(payload)])).rows[0].id;
  }
  async function delivery(id) {
    const { rows } = await cluster.query('SELECT * FROM outbox.deliveries WHERE event_id = $1', [id]);
    return rows[0];
  }

  test('a connection reset mid-response is recorded and retried', async () => {
    let calls = 0;
    sink.respond = () => (++calls === 1 ? { destroy: true } : { status: 204 });
    try {
      const id = await enqueue({ reset: 1 });
      await waitFor(async () => (await delivery(id))?.state === 'delivered', { message: 'delivery after the reset' });
      const d = await delivery(id);
      assert.equal(d.attempts, 2);
    } finally {
      sink.respond = () => ({ status: 204 });
    }
  });

  test('503 without Retry-After is retried with backoff', async () => {
    let calls = 0;
    sink.respond = () => (++calls <= 2 ? { status: 503 } : { status: 204 });
    try {
      const id = await enqueue({ unavailable: 1 });
      await waitFor(async () => (await delivery(id))?.state === 'delivered', { message: 'delivery after 503s' });
      assert.equal((await delivery(id)).attempts, 3);
    } finally {
      sink.respond = () => ({ status: 204 });
    }
  });

  test('TLS: a self-signed certificate is refused until outbox.ca_file names it', async () => {
    const dir = cluster.dir;
    const key = path.join(dir, 'tls-key.pem');
    const cert = path.join(dir, 'tls-cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    fs.chmodSync(cert, 0o644);
    const received = [];
    const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => {
      req.resume();
      req.on('end', () => {
        received.push(req.headers['webhook-id']);
        res.writeHead(204).end();
      });
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      await cluster.query(`SELECT outbox.create_endpoint('tls', $1, topics => '{tls.*}')`,
        [`https://127.0.0.1:${server.address().port}/hook`]);
      const id = (await cluster.query("SELECT outbox.enqueue('tls.test', '{}') AS id")).rows[0].id;
      const failed = await waitFor(async () => {
        const { rows } = await cluster.query(
          "SELECT last_error FROM outbox.deliveries d JOIN outbox.endpoints ep ON ep.id = d.endpoint_id WHERE ep.name = 'tls' AND d.event_id = $1", [id]);
        return rows[0]?.last_error;
      }, { message: 'a TLS failure recorded' });
      assert.match(failed, /TLS|certificate|SSL/i);
      assert.deepEqual(received, []);
      await cluster.reload({ 'outbox.ca_file': cert });
      await waitFor(() => received.includes(id), { message: 'delivery once the CA is trusted' });
    } finally {
      await cluster.query("SELECT outbox.drop_endpoint('tls')");
      await cluster.reload({ 'outbox.ca_file': null });
      server.close();
    }
  });

  test('while a receiver hangs, the worker holds no transaction and no snapshot', async () => {
    await cluster.reload({ 'outbox.request_timeout': '12s' });
    sink.respond = () => ({ delay: 10000, status: 204 });
    try {
      const ids = [];
      for (let i = 0; i < 5; i++) ids.push(await enqueue({ hang: i }));
      await sink.waitForCount(5);
      for (let sample = 0; sample < 10; sample++) {
        const { rows } = await cluster.query(`
          SELECT coalesce(max(extract(epoch FROM now() - xact_start)), 0) AS oldest_xact,
                 bool_or(backend_xmin IS NOT NULL) AS holds_xmin
          FROM pg_stat_activity WHERE backend_type = 'outbox worker'`);
        assert.ok(Number(rows[0].oldest_xact) < 1, `worker transaction open for ${rows[0].oldest_xact} s`);
        assert.notEqual(rows[0].holds_xmin, true, 'the worker holds back the xmin horizon');
        await sleep(500);
      }
      sink.respond = () => ({ status: 204 });
      await sink.waitForIds(ids, { timeout: 30000 });
    } finally {
      sink.respond = () => ({ status: 204 });
      await cluster.reload({ 'outbox.request_timeout': null });
    }
  });

  test('changing outbox.url and outbox.secret with a reload mid-stream loses nothing', async () => {
    const second = 'whsec_dGhpcyBpcyBhIHNlY3JldCBrZXkgZm9yIHRlc3Rz';
    const other = await startSink({ secrets: [second] });
    try {
      const ids = [];
      const producing = (async () => {
        for (let i = 0; i < 60; i++) {
          ids.push(await enqueue({ stream: i }));
          await sleep(10);
        }
      })();
      await sleep(250);
      await cluster.reload({ 'outbox.url': other.url, 'outbox.secret': second });
      await producing;
      await waitFor(() => ids.every((id) => sink.byId(id).length + other.byId(id).length > 0),
        { message: 'every event at one of the two receivers' });
      assert.ok(other.requests.length > 0, 'the new URL is used');
      assert.ok(sink.requests.some((r) => ids.includes(r.id)), 'the old URL was used before the reload');
      assert.ok(other.requests.every((r) => r.verified), 'the new receiver verifies with the new secret');
    } finally {
      await cluster.reload({ 'outbox.url': sink.url, 'outbox.secret': TEST_SECRET });
      await other.close();
    }
  });
});
