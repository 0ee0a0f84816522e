// The order saga (examples/order-saga; README, "The order saga") end to
// end: 500 sagas through the example's SQL and its three real services,
// which fail at random, refuse some steps and sometimes act and answer only
// after the request timeout, while the server is stopped in immediate mode
// and restarted, and the payment service is killed (kill -9) and restarted.
// Then: every saga ended completed or compensated; the services' own
// records show every step that took effect in a compensated saga undone
// exactly once and none undone in a completed one, no step done twice, no
// customer charged twice; no callback ever failed (an illegal transition
// would have: the database refuses it); no delivery is left.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { startCluster, waitFor } from '../lib/cluster.mjs';
import { TEST_SECRET } from '../lib/sink.mjs';

const example = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../examples/order-saga');
const SAGAS = 500;
const ACTIVE = 100;  // sagas under way at once: the faults find sagas in every state
const TIMEOUT = '1s';  // the endpoints' request timeout; the slow answers come after 1.5 s
// A 500 before anything happens, a refusal of the step, an answer after the timeout.
const rates = { 'fail-rate': 0.1, 'slow-rate': 0.04, 'slow-ms': 1500 };
const refuseRates = { inventory: 0.04, payment: 0.08, fulfilment: 0.04 };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const STEPS = { inventory: ['reserve', 'release'], payment: ['charge', 'refund'], fulfilment: ['schedule', 'cancel'] };

// Starts one of the example's services (on `port`: the same one after a
// restart, as the endpoints name it); resolves once it listens.
function startService(name, dir, port = 0) {
  const args = [path.join(example, 'services', `${name}.mjs`), '--port', String(port), '--secret', TEST_SECRET,
                '--state', path.join(dir, `${name}.jsonl`), '--refuse-rate', String(refuseRates[name])];
  for (const [option, value] of Object.entries(rates)) args.push(`--${option}`, String(value));
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  return new Promise((resolve, reject) => {
    readline.createInterface({ input: proc.stdout }).on('line', (line) => {
      const m = / listening on (http:\/\/\S+)/.exec(line);
      if (m) resolve({ name, url: m[1], port: Number(new URL(m[1]).port), proc, exited });
    });
    exited.then((code) => reject(new Error(`${name} exited (${code}) before listening`)));
  });
}

// A psql script of the example, run as the superuser with psql's variables.
function psql(cluster, file, vars = {}) {
  const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', cluster.dir, '-p', String(cluster.port), '-U', 'postgres',
                '-d', cluster.database, ...Object.entries(vars).flatMap(([k, v]) => ['-v', `${k}=${v}`])];
  const result = spawnSync(path.join(cluster.bindir, 'psql'), args,
                           { input: fs.readFileSync(path.join(example, file)), encoding: 'utf8' });
  assert.equal(result.status, 0, `psql ${file}: ${result.stderr}`);
}

// The lines of a service's state file: every answer it gave, and replays.
function serviceLog(dir, name) {
  return fs.readFileSync(path.join(dir, `${name}.jsonl`), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

// Starts the sagas SAGAS..1 as saga_app, ten per transaction, keeping at
// most ACTIVE under way; rides out the server's restart (a batch whose
// COMMIT went unanswered is looked for before it is started again). Fails
// on any other error.
async function produce(cluster) {
  let client = null;
  for (let next = 1; next <= SAGAS;) {
    const ids = Array.from({ length: Math.min(10, SAGAS - next + 1) }, (_, i) => next + i);
    try {
      if (!client) {
        client = await cluster.client();
        await client.query('SET ROLE saga_app');
      }
      const { rows: [{ n }] } = await client.query(
        "SELECT count(*)::int AS n FROM order_saga.sagas WHERE state NOT IN ('completed', 'compensated')");
      if (n > ACTIVE) {
        await sleep(100);
        continue;
      }
      const { rows: existing } = await client.query('SELECT id FROM order_saga.sagas WHERE id = ANY($1)', [ids]);
      const todo = ids.filter((id) => !existing.some((r) => Number(r.id) === id));
      await client.query('BEGIN');
      for (const id of todo) {
        await client.query('SELECT order_saga.start($1, $2, $3, $4, $5)',
                           [id, `customer-${id % 97}`, `sku-${id % 13}`, 1 + (id % 3), 1000 + id]);
      }
      await client.query('COMMIT');
      next += ids.length;
    } catch (err) {
      // The server going away is expected; the saga's SQL failing is not.
      if (err.severity && !/^(57|08)/.test(err.code)) throw err;
      try { await client?.end(); } catch { /* already gone */ }
      client = null;
      await sleep(100);  // the server is restarting
    }
  }
  await client?.end();
}

describe('the order saga', () => {
  let cluster;
  let dir;
  const services = {};

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outbox-saga-'));
    for (const name of Object.keys(STEPS)) services[name] = await startService(name, dir);
    cluster = await startCluster({ conf: { 'outbox.lease': '1s', restart_after_crash: 'on' } });
    psql(cluster, 'schema.sql');
    psql(cluster, 'endpoints.sql', { inventory: services.inventory.url, payment: services.payment.url,
                                     fulfilment: services.fulfilment.url, secret: TEST_SECRET, timeout: TIMEOUT });
  });
  after(async () => {
    await cluster?.destroy();
    for (const s of Object.values(services)) s.proc.kill('SIGKILL');
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('an illegal transition is refused by the database', async () => {
    await cluster.query(`INSERT INTO order_saga.sagas (id, customer, sku, quantity, amount_cents)
                         VALUES (0, 'nobody', 'none', 1, 1)`);
    await assert.rejects(cluster.query("UPDATE order_saga.sagas SET state = 'completed' WHERE id = 0"),
                         (err) => err.code === '23514' && /illegal transition of saga 0: reserving -> completed/.test(err.message));
    await assert.rejects(cluster.query(`INSERT INTO order_saga.sagas (id, customer, sku, quantity, amount_cents, state)
                                        VALUES (-1, 'nobody', 'none', 1, 1, 'charging')`), (err) => err.code === '23514');
    await cluster.query('DELETE FROM order_saga.history WHERE saga_id = 0; DELETE FROM order_saga.sagas WHERE id = 0');
  });

  test(`${SAGAS} sagas through an immediate restart and a killed service`, async (t) => {
    const started = Date.now();
    // Waits until n sagas have finished; fails at once when a callback has
    // died (a saga's SQL refused a result: it would never finish).
    const finished = async (n, timeout = 120000) => {
      const end = await waitFor(async () => {
        const { rows: [r] } = await cluster.query(`
          SELECT (SELECT count(*) FROM order_saga.sagas WHERE state IN ('completed', 'compensated'))::int AS n,
                 (SELECT string_agg(DISTINCT callback_error, '; ') FROM outbox.deliveries
                  WHERE callback_state = 'dead') AS errors`);
        return r.n >= n || r.errors ? r : null;
      }, { timeout, message: `${n} sagas finished` }).catch(async (err) => {
        const { rows } = await cluster.query('SELECT state, count(*)::int FROM order_saga.sagas GROUP BY state');
        throw new Error(`${err.message}; sagas by state: ${JSON.stringify(rows)}`);
      });
      assert.equal(end.errors, null, 'callbacks died');
    };
    const producing = produce(cluster);

    await finished(100);
    await cluster.stop({ mode: 'immediate' });
    await cluster.start();

    await finished(250);
    // Killed while it holds back the answer to a charge it has made: the
    // charge took effect, its delivery will die without an answer, and its
    // saga must refund it.
    const lateCharges = () => serviceLog(dir, 'payment').filter((l) => l.late && l.op === 'charge' && l.effect);
    const lateBefore = lateCharges().length;
    const caught = await waitFor(() => lateCharges()[lateBefore], { timeout: 60000, message: 'a charge answered late' });
    const killedAt = new Date();
    services.payment.proc.kill('SIGKILL');
    await services.payment.exited;
    // Down until a charge has died of it (its saga then refunds: the charge
    // may have been made), and then a refund (the saga sends it again).
    await waitFor(async () => (await cluster.query(
      `SELECT DISTINCT e.name FROM outbox.deliveries d JOIN outbox.endpoints e ON e.id = d.endpoint_id
       WHERE e.name IN ('payment-charge', 'payment-refund') AND d.state = 'dead' AND d.finished_at > $1`,
      [killedAt])).rowCount === 2,
    { timeout: 60000, message: 'a charge and a refund dead while the payment service is down' });
    services.payment = await startService('payment', dir, services.payment.port);

    await producing;
    await finished(SAGAS, 180000);
    // The last callbacks have committed with their sagas' last moves; the
    // deliveries have all ended.
    await waitFor(async () => (await cluster.counts()).pending === 0, { timeout: 60000, message: 'no pending delivery' });
    const seconds = (Date.now() - started) / 1000;

    const sagas = new Map((await cluster.query('SELECT * FROM order_saga.sagas')).rows.map((s) => [Number(s.id), s]));
    assert.equal(sagas.size, SAGAS);
    const byState = { completed: 0, compensated: 0 };
    for (const s of sagas.values()) byState[s.state] = (byState[s.state] ?? 0) + 1;
    assert.deepEqual(Object.keys(byState).sort(), ['compensated', 'completed'], JSON.stringify(byState));

    // What the services did, from their own records: effects per saga.
    const done = {};    // step -> saga -> how many times it took effect
    const answers = {};  // step -> saga -> the answer of the effect
    let replays = 0;
    let late = 0;
    for (const [service, [step, undo]] of Object.entries(STEPS)) {
      for (const op of [step, undo]) done[op] = new Map();
      answers[step] = new Map();
      for (const line of serviceLog(dir, service)) {
        if (line.replay) replays++;
        if (line.late) late++;
        if (line.replay || !line.effect) continue;
        done[line.op].set(line.saga, (done[line.op].get(line.saga) ?? 0) + 1);
        if (line.op === step) answers[step].set(line.saga, line.answer);
      }
    }
    const ids = { reserve: 'reservation_id', charge: 'payment_id', schedule: 'shipment_id' };
    const charged = new Map();  // customer -> net charges
    for (const [id, s] of sagas) {
      for (const [step, undo] of Object.values(STEPS)) {
        const did = done[step].get(id) ?? 0;
        const undid = done[undo].get(id) ?? 0;
        assert.ok(did <= 1, `saga ${id}: ${step} took effect ${did} times`);
        if (s.state === 'completed') {
          assert.deepEqual([did, undid], [1, 0], `completed saga ${id}: ${step} done ${did}, ${undo} done ${undid}`);
          assert.equal(s[ids[step]], answers[step].get(id)[ids[step]], `saga ${id} keeps the ${step}'s answer`);
        } else {
          assert.equal(undid, did, `compensated saga ${id} (${s.failure}): ${step} done ${did}, ${undo} done ${undid}`);
        }
      }
      const net = (done.charge.get(id) ?? 0) - (done.refund.get(id) ?? 0);
      charged.set(s.customer, (charged.get(s.customer) ?? 0) + net);
    }
    assert.deepEqual([sagas.get(caught.saga).state, done.refund.get(caught.saga)], ['compensated', 1],
                     `saga ${caught.saga}, whose charge was made but never answered, refunded`);
    for (const [customer, net] of charged) {
      const orders = [...sagas.values()].filter((s) => s.customer === customer && s.state === 'completed').length;
      assert.equal(net, orders, `${customer}: charged ${net} times net of refunds for ${orders} completed orders`);
    }

    // The saga sent each step once (a compensation again only when it died).
    const { rows: sent } = await cluster.query(`
      SELECT (e.payload ->> 'saga_id')::bigint AS saga, e.topic, count(*)::int AS n,
             count(*) FILTER (WHERE d.state = 'dead')::int AS dead
      FROM outbox.events e JOIN outbox.deliveries d ON d.event_id = e.id
      GROUP BY 1, 2`);
    for (const r of sent) {
      const compensation = /release|refund|cancel/.test(r.topic);
      assert.ok(r.n === 1 || (compensation && r.n === r.dead + 1), `saga ${r.saga}: ${r.n} events ${r.topic} (${r.dead} dead)`);
    }
    // No callback failed: each was called once and committed. An illegal
    // move (or a stale result) would have made one fail.
    const { rows: [cb] } = await cluster.query(`
      SELECT count(*)::int AS deliveries, count(*) FILTER (WHERE callback_state = 'done')::int AS done,
             max(callback_attempts) AS max_calls, sum(attempts - 1)::int AS retries,
             count(*) FILTER (WHERE state = 'dead')::int AS dead
      FROM outbox.deliveries`);
    assert.deepEqual([cb.done, cb.max_calls], [cb.deliveries, 1], 'every callback called once and committed');
    const { rows: [stats] } = await cluster.query(
      'SELECT sum(callbacks_pending)::int AS pending, sum(callbacks_dead)::int AS dead FROM outbox.stats');
    assert.deepEqual([stats.pending, stats.dead], [0, 0]);
    const { rows: [moves] } = await cluster.query(`
      SELECT count(*)::int AS n, count(*) FILTER (WHERE h.from_state IS NOT NULL AND t.from_state IS NULL)::int AS illegal
      FROM order_saga.history h LEFT JOIN order_saga.transitions t USING (from_state, to_state)`);
    assert.equal(moves.illegal, 0);

    const { rows: failures } = await cluster.query(`
      SELECT failure, count(*)::int AS n FROM order_saga.sagas WHERE state = 'compensated' GROUP BY 1 ORDER BY 2 DESC`);
    const resends = [...sagas.values()].reduce((sum, s) => sum + s.compensation_resends, 0);
    t.diagnostic(`${SAGAS} sagas in ${seconds.toFixed(1)} s: ${byState.completed} completed, ${byState.compensated} ` +
      `compensated (${failures.map((f) => `${f.failure} ${f.n}`).join(', ')}); ${cb.deliveries} deliveries, ` +
      `${cb.retries} retries, ${cb.dead} dead, ${resends} compensations resent; ${moves.n} moves; ` +
      `the services answered ${replays} repeated requests from their records, ${late} answers came after the timeout`);
  });
});
