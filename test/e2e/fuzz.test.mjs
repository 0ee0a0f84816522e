// Bad input, seeded and bounded: random topics, keys, headers (line breaks,
// non-string values, huge names, reserved names) and payload sizes around
// the limit. Every bad call fails with a message and an expected SQLSTATE
// and writes nothing; every good one is delivered. Invalid settings are
// refused and change nothing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { prng, startWithReceiver } from '../lib/setup.mjs';


const LIMIT = 200;  // outbox.max_payload_size for the session
const RESERVED = ['content-type', 'content-length', 'host', 'transfer-encoding', 'connection', 'expect', 'te',
                  'trailer', 'upgrade', 'keep-alive'];
const bytes = (s) => Buffer.byteLength(s, 'utf8');

// The rules of enqueue(), as a user reads them in the README, in the order
// it checks them: topic, payload, key, headers.
function expectedError(call) {
  if (call.topic === null) return '22004';
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$/.test(call.topic)) return '22023';
  if (bytes(JSON.stringify({ d: call.data }).replace(':', ': ')) > LIMIT) return '54000';
  if (call.key !== null && (bytes(call.key) < 1 || bytes(call.key) > 1024)) return '22023';
  if (call.headers !== null) {
    if (typeof call.headers !== 'object' || Array.isArray(call.headers)) return '22023';
    for (const [name, value] of Object.entries(call.headers)) {
      if (typeof value !== 'string') return '22023';
      if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}$/.test(name)) return '22023';
      if (name.toLowerCase().startsWith('webhook-') || RESERVED.includes(name.toLowerCase())) return '22023';
      if (/[\r\n]/.test(value) || bytes(value) > 8192) return '22023';
    }
  }
  return null;
}

function generate(random) {
  const pick = (xs) => xs[Math.floor(random() * xs.length)];
  const str = (n, alphabet) => Array.from({ length: n }, () => pick(alphabet)).join('');
  const alnum = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const valid = () => random() < 0.6;  // most parts valid, so that whole calls often are
  const topic = valid() ? 'order.' + str(1 + Math.floor(random() * 10), alnum) : pick([
    () => null, () => '', () => str(1 + Math.floor(random() * 20), alnum + '._:-'),
    () => str(1, alnum) + str(Math.floor(random() * 20), alnum + '._:-'),
    () => str(254 + Math.floor(random() * 3), alnum), () => 'order created', () => 'ordér.created',
    () => '.hidden', () => 'a/b', () => 'a\nb',
  ])();
  const key = valid() ? pick([null, 'order-' + str(4, alnum)]) : pick([() => null, () => null, () => '', () => str(1 + Math.floor(random() * 30), alnum),
                    () => 'ключ-' + str(5, alnum), () => 'k'.repeat(1023 + Math.floor(random() * 3))])();
  const headerName = () => pick([() => 'x-' + str(1 + Math.floor(random() * 10), alnum), () => 'Webhook-Id',
    () => 'content-type', () => 'Host', () => 'bad name', () => '', () => 'x'.repeat(255 + Math.floor(random() * 3)),
    () => 'x-ok', () => 'X-Tenant'])();
  const headerValue = () => pick([() => str(Math.floor(random() * 20), alnum + ' -'), () => 'a\r\nInjected: 1',
    () => 'line\nbreak', () => 42, () => null, () => ['x'], () => 'v'.repeat(8192 + Math.floor(random() * 2))])();
  const headers = valid() ? pick([null, { 'x-tenant': str(6, alnum) }]) : pick([() => null, () => null, () => ({}), () => [1, 2], () => 'x-a: b',
    () => Object.fromEntries(Array.from({ length: 1 + Math.floor(random() * 3) }, () => [headerName(), headerValue()]))])();
  // Mostly small; sometimes right around the limit.
  const size = valid() ? Math.floor(random() * 100) : LIMIT - 9 - 5 + Math.floor(random() * 11);
  const data = str(size, alnum);
  return { topic, key, headers, data };
}

describe('bad input', () => {
  let cluster;
  let sink;
  const seed = Number(process.env.OUTBOX_TEST_SEED || 4242);

  let env;

  before(async () => {
    env = await startWithReceiver();
    ({ cluster, sink } = env);
  });
  after(async () => env?.destroy());

  test(`random enqueue calls (seed ${seed}): refusals are clear and write nothing; the rest is delivered`, async (t) => {
    const random = prng(seed);
    const client = await cluster.client();
    const good = [];
    let refused = 0;
    try {
      await client.query(`SET outbox.max_payload_size = ${LIMIT}`);
      for (let i = 0; i < 400; i++) {
        const call = generate(random);
        const expected = expectedError(call);
        const args = [call.topic, JSON.stringify({ d: call.data }), call.key,
                      call.headers === null ? null : JSON.stringify(call.headers)];
        try {
          const { rows } = await client.query('SELECT outbox.enqueue($1, $2::jsonb, key => $3, headers => $4::jsonb) AS id', args);
          assert.equal(expected, null, `accepted but should fail with ${expected}: ${JSON.stringify(call).slice(0, 300)}`);
          good.push(rows[0].id);
        } catch (err) {
          if (err.code === undefined) throw err;
          refused++;
          assert.equal(err.code, expected ?? 'accepted',
            `${JSON.stringify(call).slice(0, 300)} failed with ${err.code}: ${err.message}`);
          assert.ok(err.message.length > 10, 'a message');
          assert.ok(err.hint || err.detail || err.code === '54000' || /must|invalid|reserved|too/.test(err.message),
            `a hint or a telling message: ${err.message}`);
        }
      }
    } finally {
      await client.end();
    }
    t.diagnostic(`${good.length} accepted, ${refused} refused`);
    assert.ok(good.length > 20 && refused > 100, 'the generator exercises both sides');
    const { rows } = await cluster.query('SELECT count(*)::int AS n FROM outbox.events');
    assert.equal(rows[0].n, good.length, 'refused calls wrote nothing');
    await sink.waitForIds(good);
  });

  test('invalid settings are refused and change nothing', async () => {
    const random = prng(seed + 1);
    const junk = ['', '-1', 'abc', '0', '1e99', "'; DROP TABLE x; --", 'ftp://x', 'whsec_!!!', '300.1.1.1/8', '1ms'];
    const gucs = ['outbox.url', 'outbox.secret', 'outbox.allowed_networks', 'outbox.batch_size', 'outbox.max_in_flight',
                  'outbox.request_timeout', 'outbox.poll_interval', 'outbox.max_attempts', 'outbox.channel', 'outbox.paused'];
    let refused = 0;
    for (let i = 0; i < 60; i++) {
      const name = gucs[Math.floor(random() * gucs.length)];
      const value = junk[Math.floor(random() * junk.length)];
      try {
        await cluster.query(`ALTER SYSTEM SET ${name} = ${cluster.literal(value)}`, [], 'postgres');
        // Accepted values must be valid ones: put the setting back.
        await cluster.query(`ALTER SYSTEM RESET ${name}`, [], 'postgres');
      } catch (err) {
        refused++;
        assert.match(err.code, /^(22023|22P02)$/, `${name} = ${value}: ${err.code} ${err.message}`);
        if (name === 'outbox.secret') {
          assert.ok(!`${err.message} ${err.detail} ${err.hint}`.includes(value) || value === '', 'a secret is never echoed');
        }
      }
    }
    assert.ok(refused > 20);
    await cluster.query('SELECT pg_reload_conf()', [], 'postgres');
    const id = (await cluster.query("SELECT outbox.enqueue('after.fuzz', '{}') AS id")).rows[0].id;
    await sink.waitForIds([id]);
  });
});
