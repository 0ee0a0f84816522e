// Endpoints end to end: fan-out with per-endpoint secrets, topic routing,
// rotation verified with each key, 410 Gone, Retry-After per endpoint, a
// hanging endpoint that does not hold up the others, the address guard and
// redirects.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startCluster, waitFor } from '../lib/cluster.mjs';
import { startSink, TEST_SECRET } from '../lib/sink.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

describe('endpoints', () => {
  let cluster;
  const sinks = {};

  async function enqueue(topic, payload = {}) {
    const { rows } = await cluster.query('SELECT outbox.enqueue($1, $2::jsonb) AS id', [topic, JSON.stringify(payload)]);
    return rows[0].id;
  }
  async function createEndpoint(name, sink, options = {}) {
    const { rows } = await cluster.query(
      `SELECT outbox.create_endpoint($1, $2, topics => $3, secret => $4, headers => $5::jsonb, timeout => $6::interval) AS secret`,
      [name, options.url || sink.url, options.topics || ['*'], options.secret || null,
       options.headers ? JSON.stringify(options.headers) : null, options.timeout || null]);
    return rows[0].secret;
  }
  async function deliveryState(id, endpoint) {
    const { rows } = await cluster.query(
      `SELECT d.state, d.attempts, d.last_status, d.last_error FROM outbox.deliveries d
       JOIN outbox.endpoints ep ON ep.id = d.endpoint_id WHERE d.event_id = $1 AND ep.name = $2`, [id, endpoint]);
    return rows[0];
  }

  before(async () => {
    // No default endpoint here: outbox.url stays empty.
    cluster = await startCluster({ conf: { 'outbox.request_timeout': '2s', 'outbox.max_in_flight': 8 } });
  });
  after(async () => {
    await cluster?.destroy();
    for (const sink of Object.values(sinks)) await sink.close();
  });

  test('fan-out: each event reaches every matching endpoint, signed with that endpoint\'s secret', async () => {
    sinks.billing = await startSink();
    sinks.crm = await startSink();
    sinks.audit = await startSink();
    const billingSecret = await createEndpoint('billing', sinks.billing, { topics: ['order.*'], headers: { 'x-team': 'billing' } });
    const crmSecret = await createEndpoint('crm', sinks.crm, { topics: ['user.created', 'order.created'] });
    const auditSecret = await createEndpoint('audit', sinks.audit);
    sinks.billing.secrets = [billingSecret];
    for (const [sink, secret] of [[sinks.billing, billingSecret], [sinks.crm, crmSecret], [sinks.audit, auditSecret]]) {
      sink.verifyWith = secret;
    }
    const order = await enqueue('order.created', { o: 1 });
    const paid = await enqueue('order.paid', { o: 2 });
    const user = await enqueue('user.created', { u: 1 });
    await sinks.billing.waitForIds([order, paid]);
    await sinks.crm.waitForIds([order, user]);
    await sinks.audit.waitForIds([order, paid, user]);
    await sleep(300);
    assert.deepEqual([...sinks.billing.ids()].sort(), [order, paid].sort());
    assert.deepEqual([...sinks.crm.ids()].sort(), [order, user].sort());
    assert.equal(sinks.billing.byId(order)[0].headers['x-team'], 'billing');
    const { Webhook } = await import('standardwebhooks');
    const verify = (secret, r) => { new Webhook(secret).verify(r.body, r.headers); return true; };
    assert.ok(verify(billingSecret, sinks.billing.byId(order)[0]));
    assert.ok(verify(crmSecret, sinks.crm.byId(order)[0]));
    assert.ok(verify(auditSecret, sinks.audit.byId(order)[0]));
    assert.throws(() => verify(crmSecret, sinks.billing.byId(order)[0]), 'secrets differ per endpoint');
    const { rows } = await cluster.query('SELECT count(*)::int AS n FROM outbox.events WHERE id = $1', [order]);
    assert.equal(rows[0].n, 1, 'the payload is stored once');
  });

  test('rotation: during the grace period both the new and the old key verify', async () => {
    const oldSecret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    sinks.rotating = await startSink();
    await createEndpoint('rotating', sinks.rotating, { secret: oldSecret });
    const before = await enqueue('rotation.before');
    await sinks.rotating.waitForIds([before]);
    const newSecret = (await cluster.query("SELECT outbox.rotate_secret('rotating') AS s")).rows[0].s;
    const during = await enqueue('rotation.during');
    await sinks.rotating.waitForIds([during]);
    const { Webhook } = await import('standardwebhooks');
    const [got] = sinks.rotating.byId(during);
    assert.equal(got.signature.split(' ').length, 2, 'two signatures');
    assert.doesNotThrow(() => new Webhook(newSecret).verify(got.body, got.headers));
    assert.doesNotThrow(() => new Webhook(oldSecret).verify(got.body, got.headers));
    // Without grace the old key stops at once.
    const newest = (await cluster.query("SELECT outbox.rotate_secret('rotating', grace => '0s') AS s")).rows[0].s;
    const afterRotation = await enqueue('rotation.after');
    await sinks.rotating.waitForIds([afterRotation]);
    const [last] = sinks.rotating.byId(afterRotation);
    assert.equal(last.signature.split(' ').length, 1);
    assert.doesNotThrow(() => new Webhook(newest).verify(last.body, last.headers));
    assert.throws(() => new Webhook(newSecret).verify(last.body, last.headers));
  });

  test('410 Gone disables the endpoint; its deliveries wait and flow after enable_endpoint', async () => {
    let gone = true;
    sinks.gone = await startSink({ respond: () => (gone ? { status: 410 } : { status: 204 }) });
    await createEndpoint('gone', sinks.gone, { topics: ['gone.*'] });
    const first = await enqueue('gone.one');
    await waitFor(async () => {
      const { rows } = await cluster.query("SELECT enabled, disabled_reason FROM outbox.endpoint_status WHERE name = 'gone'");
      return rows[0].enabled === false && rows[0].disabled_reason;
    }, { message: 'the endpoint disabled' });
    const { rows } = await cluster.query("SELECT disabled_reason FROM outbox.endpoint_status WHERE name = 'gone'");
    assert.match(rows[0].disabled_reason, /410 Gone/);
    assert.equal((await deliveryState(first, 'gone')).state, 'pending', 'not burnt through as dead');
    const requestsWhileDisabled = sinks.gone.requests.length;
    await enqueue('gone.two');
    await sleep(800);
    assert.equal(sinks.gone.requests.length, requestsWhileDisabled, 'nothing sent while disabled');
    gone = false;
    await cluster.query("SELECT outbox.enable_endpoint('gone')");
    await waitFor(async () => (await deliveryState(first, 'gone')).state === 'delivered', { message: 'delivery after enable' });
  });

  test('429 with Retry-After pauses only that endpoint', async () => {
    let throttled = true;
    sinks.throttled = await startSink({
      respond: () => (throttled ? { status: 429, headers: { 'retry-after': '1' } } : { status: 204 }),
    });
    sinks.fine = await startSink();
    await createEndpoint('throttled', sinks.throttled, { topics: ['busy.*'] });
    await createEndpoint('fine', sinks.fine, { topics: ['busy.*'] });
    const first = await enqueue('busy.one');
    await sinks.throttled.waitForCount(1);
    throttled = false;
    const more = [];
    for (let i = 0; i < 5; i++) more.push(await enqueue('busy.more', { i }));
    await sinks.fine.waitForIds([first, ...more], { timeout: 1500 });  // the other endpoint keeps flowing
    const throttledAt = sinks.throttled.requests[0].receivedAt;
    await sinks.throttled.waitForIds([first, ...more]);
    const second = sinks.throttled.requests[1].receivedAt;
    // Retry-After: 1, where the backoff alone would wait ~100 ms (retry_base).
    assert.ok(second - throttledAt >= 900, `the throttled endpoint waited ${second - throttledAt} ms (Retry-After: 1)`);
  });

  test('a hanging endpoint does not hold up the others', async () => {
    sinks.hanging = await startSink({ respond: () => ({ delay: 5000, status: 204 }) });
    sinks.quick = await startSink();
    await createEndpoint('hanging', sinks.hanging, { topics: ['hang.*'], timeout: '1s' });
    await createEndpoint('quick', sinks.quick, { topics: ['hang.*'] });
    const ids = [];
    for (let i = 0; i < 30; i++) ids.push(await enqueue('hang.event', { i }));
    await sinks.quick.waitForIds(ids, { timeout: 5000 });
    // The hanging endpoint's requests end by its own timeout (1 s).
    await waitFor(async () => {
      const { rows } = await cluster.query(
        "SELECT last_error FROM outbox.deliveries d JOIN outbox.endpoints ep ON ep.id = d.endpoint_id WHERE ep.name = 'hanging' AND last_error IS NOT NULL");
      return rows.some((r) => /timeout after 1000 ms/.test(r.last_error));
    }, { message: 'a timeout recorded for the hanging endpoint' });
    await cluster.query("SELECT outbox.drop_endpoint('hanging')");
  });

  test('address guard: a loopback address outside allowed_networks is refused, nothing is sent', async () => {
    sinks.forbidden = await startSink({ host: '127.0.0.2' });
    await createEndpoint('forbidden', sinks.forbidden, { topics: ['guard.*'] });
    const id = await enqueue('guard.test');
    await waitFor(async () => (await deliveryState(id, 'forbidden'))?.last_error, { message: 'a recorded refusal' });
    const state = await deliveryState(id, 'forbidden');
    assert.match(state.last_error, /refused to connect to 127\.0\.0\.2: loopback/);
    assert.match(state.last_error, /outbox\.allowed_networks/);
    assert.equal(sinks.forbidden.requests.length, 0);
    await cluster.query("SELECT outbox.drop_endpoint('forbidden')");
  });

  test('redirects are not followed', async () => {
    sinks.target = await startSink();
    sinks.redirecting = await startSink({ respond: () => ({ status: 302, headers: { location: sinks.target.url } }) });
    await createEndpoint('redirecting', sinks.redirecting, { topics: ['redirect.*'] });
    const id = await enqueue('redirect.test');
    await waitFor(async () => (await deliveryState(id, 'redirecting'))?.last_status === 302, { message: 'the 302 recorded' });
    await sleep(500);
    assert.equal(sinks.target.requests.length, 0, 'no request followed the redirect');
    await cluster.query("SELECT outbox.drop_endpoint('redirecting')");
  });

  test('replay sends an event again; redrive re-queues dead deliveries', async () => {
    let fail = true;
    sinks.replay = await startSink({ respond: () => (fail ? { status: 500 } : { status: 204 }) });
    await cluster.reload({ 'outbox.max_attempts': '1' });
    try {
      await createEndpoint('replay', sinks.replay, { topics: ['replay.*'] });
      const id = await enqueue('replay.test');
      await waitFor(async () => (await deliveryState(id, 'replay'))?.state === 'dead', { message: 'a dead delivery' });
      fail = false;
      const { rows } = await cluster.query("SELECT outbox.redrive('replay') AS n");
      assert.equal(rows[0].n, 1);
      await waitFor(async () => (await deliveryState(id, 'replay'))?.state === 'delivered', { message: 'redriven' });
      const before = sinks.replay.byId(id).length;
      await cluster.query("SELECT outbox.replay($1, endpoint => 'replay')", [id]);
      await waitFor(() => sinks.replay.byId(id).length === before + 1, { message: 'the replay' });
    } finally {
      await cluster.reload({ 'outbox.max_attempts': null });
    }
  });
});
