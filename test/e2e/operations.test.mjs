// Operating it: the counters of outbox.stats against real receivers, the
// attempt history under failures, and every operational event (delivery
// dead, endpoint failing, recovered, disabled by 410 and by an admin),
// each told once in the log and never sent to the endpoint it is about.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startCluster, waitFor } from '../lib/cluster.mjs';
import { startSink } from '../lib/sink.mjs';

const count = (text, pattern) => (text.match(pattern) || []).length;
const seconds = (interval) => {
  if (interval == null) return null;
  const { hours = 0, minutes = 0, seconds: s = 0, milliseconds = 0 } = interval;
  return hours * 3600 + minutes * 60 + s + milliseconds / 1000;
};

describe('operations', () => {
  let cluster;
  const answers = { shop: 204, flaky: 204, ops: 204, audit: 204, gone: 410, spare: 204 };
  const sinks = {};

  async function stats(endpoint) {
    const { rows } = await cluster.query('SELECT * FROM outbox.stats WHERE endpoint = $1', [endpoint]);
    return rows[0];
  }
  async function enqueue(topic, n = 1) {
    const { rows } = await cluster.query(
      'SELECT array_agg(outbox.enqueue($1, jsonb_build_object(\'i\', i))) AS ids FROM generate_series(1, $2) AS i', [topic, n]);
    return rows[0].ids;
  }
  // Operational events a receiver got, as { topic, payload }.
  const opsEvents = (sink) => sink.requests.map((r) => JSON.parse(r.body)).filter((p) => p.endpoint !== undefined);

  before(async () => {
    for (const name of Object.keys(answers)) {
      sinks[name] = await startSink({ respond: () => ({ status: answers[name] }) });
    }
    cluster = await startCluster({ conf: { 'outbox.max_attempts': 2, 'outbox.retry_base': '50ms', 'outbox.retry_max': '100ms' } });
    const create = (name, topics) => cluster.query('SELECT outbox.create_endpoint($1, $2, topics => $3)', [name, sinks[name].url, topics]);
    await create('shop', ['order.*']);
    await create('flaky', ['payment.*']);
    await create('gone', ['legacy.*']);
    await create('spare', ['spare.*']);  // toggled to make operational events
    await create('ops', ['outbox.*']);
    await create('audit', ['outbox.*']);
  });
  after(async () => {
    await cluster?.destroy();
    for (const sink of Object.values(sinks)) await sink.close();
  });

  test('outbox.stats counts deliveries, failures and latency per endpoint; stats_reset() zeroes the counters', async () => {
    const ids = await enqueue('order.created', 20);
    await sinks.shop.waitForIds(ids);
    await waitFor(async () => Number((await stats('shop')).delivered) === 20, { message: '20 delivered in the counters' });
    const s = await stats('shop');
    assert.equal(Number(s.pending), 0);
    assert.equal(Number(s.failed_attempts), 0);
    assert.equal(s.consecutive_failures, 0);
    assert.ok(s.last_success_at instanceof Date && s.last_failure_at === null);
    const p50 = seconds(s.latency_p50);
    const p99 = seconds(s.latency_p99);
    assert.ok(p50 > 0 && p50 < 5 && p99 >= p50, `latency p50 ${p50}s, p99 ${p99}s`);
    assert.equal(Number(s.in_flight), 0);

    answers.shop = 500;
    const failing = await enqueue('order.failed', 1);
    // The attempt is counted when it ends; its delivery's death when the
    // result is written, up to 25 ms later (outbox.stats trails by that).
    const f = await waitFor(async () => {
      const now = await stats('shop');
      return Number(now.failed_attempts) === 2 && Number(now.dead) === 1 && now;
    }, { message: 'two failed attempts counted, and the delivery dead' });
    assert.equal(f.consecutive_failures, 2);
    assert.ok(f.last_failure_at instanceof Date);
    assert.equal(Number(f.dead), 1);
    assert.equal((await cluster.query('SELECT state FROM outbox.deliveries WHERE event_id = $1', [failing[0]])).rows[0].state, 'dead');
    answers.shop = 204;

    const before = (await stats('shop')).stats_reset;
    await cluster.query('SELECT outbox.stats_reset()');
    const r = await stats('shop');
    assert.equal(Number(r.delivered), 0);
    assert.equal(Number(r.failed_attempts), 0);
    assert.equal(r.latency_p50, null);
    assert.equal(r.consecutive_failures, 2, 'the run of failures is state, not a counter');
    assert.ok(r.stats_reset > before, 'stats_reset moves');
  });

  test('outbox.attempts keeps failed attempts by default, every attempt with log_attempts = all, none with none', async () => {
    let fails = 2;
    sinks.shop.respond = () => (fails-- > 0 ? { status: 503, body: 'busy, try later' } : { status: 204 });
    await cluster.reload({ 'outbox.max_attempts': 3 });
    const [second] = await enqueue('order.retried');
    await waitFor(async () => (await cluster.query("SELECT state FROM outbox.deliveries WHERE event_id = $1", [second])).rows[0]?.state === 'delivered',
      { message: 'delivered at the third attempt' });
    const { rows } = await cluster.query(
      'SELECT attempt, status, error, response, duration > interval \'0\' AS timed, started_at <= now() AS started FROM outbox.attempts WHERE event_id = $1 ORDER BY attempt', [second]);
    assert.deepEqual(rows, [
      { attempt: 1, status: 503, error: 'HTTP 503', response: 'busy, try later', timed: true, started: true },
      { attempt: 2, status: 503, error: 'HTTP 503', response: 'busy, try later', timed: true, started: true },
    ]);

    await cluster.reload({ 'outbox.log_attempts': 'all' });
    const [third] = await enqueue('order.logged');
    await waitFor(async () => (await cluster.query('SELECT status FROM outbox.attempts WHERE event_id = $1', [third])).rows[0]?.status === 204,
      { message: 'the successful attempt logged' });
    await cluster.reload({ 'outbox.log_attempts': 'none' });
    fails = 1;
    const [fourth] = await enqueue('order.unlogged');
    await waitFor(async () => (await cluster.query("SELECT state FROM outbox.deliveries WHERE event_id = $1", [fourth])).rows[0]?.state === 'delivered',
      { message: 'delivered' });
    assert.equal((await cluster.query('SELECT count(*)::int AS n FROM outbox.attempts WHERE event_id = $1', [fourth])).rows[0].n, 0);
    await cluster.reload({ 'outbox.log_attempts': null, 'outbox.max_attempts': 2 });
    sinks.shop.respond = () => ({ status: answers.shop });
  });

  test('operational events: dead, failing, recovered, disabled by 410 and by an admin; told once, never to the endpoint they are about', async () => {
    // flaky fails: three events die (two attempts each), and six failures in a row make it failing.
    answers.flaky = 500;
    const dead = await enqueue('payment.captured', 3);
    const deadTopics = () => opsEvents(sinks.ops).filter((p) => p.event_id && dead.includes(p.event_id));
    await waitFor(() => deadTopics().length === 3, { message: 'three outbox.delivery.dead at ops' });
    await waitFor(() => opsEvents(sinks.ops).some((p) => p.failing_since && p.endpoint === 'flaky'), { message: 'outbox.endpoint.failing at ops' });
    const deadEvent = deadTopics()[0];
    assert.deepEqual(Object.keys(deadEvent).sort(), ['attempts', 'endpoint', 'event_id', 'key', 'last_error', 'last_status', 'topic']);
    assert.equal(deadEvent.endpoint, 'flaky');
    assert.equal(deadEvent.topic, 'payment.captured');
    assert.equal(deadEvent.attempts, 2);
    assert.equal(deadEvent.last_status, 500);
    const failingEvent = opsEvents(sinks.ops).find((p) => p.consecutive_failures);
    assert.ok(failingEvent.consecutive_failures >= 5 && failingEvent.last_error === 'HTTP 500');
    assert.equal((await cluster.query("SELECT failing_since IS NOT NULL AS failing FROM outbox.endpoints WHERE name = 'flaky'")).rows[0].failing, true);

    // flaky answers again: recovered.
    answers.flaky = 204;
    await enqueue('payment.captured', 1);
    await waitFor(() => opsEvents(sinks.ops).some((p) => p.recovered_at && p.endpoint === 'flaky'), { message: 'outbox.endpoint.recovered at ops' });

    // 410 Gone disables 'gone'; an admin disables 'flaky'.
    await enqueue('legacy.sync', 1);
    await waitFor(() => opsEvents(sinks.ops).some((p) => p.endpoint === 'gone' && /410 Gone/.test(p.reason)), { message: 'disabled by 410' });
    await cluster.query("SELECT outbox.disable_endpoint('flaky', 'migrating')");
    await waitFor(() => opsEvents(sinks.ops).some((p) => p.endpoint === 'flaky' && p.reason === 'migrating'), { message: 'disabled by an admin' });
    await cluster.query("SELECT outbox.enable_endpoint('flaky')");

    // ops itself fails: the events about it go to audit, never to ops.
    answers.ops = 500;
    for (let i = 0; i < 3; i++) {
      await cluster.query("SELECT outbox.disable_endpoint('spare', $1)", [`round ${i}`]);
      await cluster.query("SELECT outbox.enable_endpoint('spare')");
    }
    await waitFor(() => opsEvents(sinks.audit).some((p) => p.endpoint === 'ops' && p.failing_since), { message: 'ops failing, told to audit' });
    answers.ops = 204;
    await cluster.query("SELECT outbox.disable_endpoint('spare', 'once more')");
    await waitFor(() => opsEvents(sinks.audit).some((p) => p.endpoint === 'ops' && p.recovered_at), { message: 'ops recovered, told to audit' });
    assert.equal(opsEvents(sinks.ops).filter((p) => p.endpoint === 'ops').length, 0, 'ops never got an event about itself');
    for (const name of ['shop', 'flaky', 'gone', 'spare']) {
      assert.equal(sinks[name].requests.filter((r) => JSON.parse(r.body).endpoint !== undefined).length, 0,
        `${name} got no operational event`);
    }

    // One log line per change, naming the endpoint.
    const log = cluster.log();
    assert.equal(count(log, /LOG: {2}outbox: endpoint "flaky" is failing: \d+ attempts in a row failed/g), 1);
    assert.equal(count(log, /LOG: {2}outbox: endpoint "flaky" has recovered/g), 1);
    assert.equal(count(log, /LOG: {2}outbox: endpoint "gone" is disabled: 410 Gone from/g), 1);
    assert.equal(count(log, /LOG: {2}outbox: endpoint "flaky" is disabled: migrating/g), 1);
    assert.equal(count(log, /LOG: {2}outbox: endpoint "flaky" is enabled/g), 1);
    assert.equal(count(log, /outbox: delivery of event [0-9a-f-]+ to endpoint "flaky" is dead after 2 attempts/g), 3);
    assert.doesNotMatch(log, /WARNING: {2}outbox( worker|: endpoint)/, "no warnings from the worker");
  });
});
