// The Prometheus query file (prometheus/outbox-queries.yaml) with the real
// exporter, Debian's prometheus-postgres-exporter: it is started against a
// test cluster, /metrics is scraped, and every outbox metric is checked
// against outbox.stats, counters typed as counters.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';

import { waitFor } from '../lib/cluster.mjs';
import { createDatabase, enqueue, startServingAll } from '../lib/databases.mjs';
import { startWithReceiver } from '../lib/setup.mjs';
import { startSink, TEST_SECRET } from '../lib/sink.mjs';

const EXPORTER = '/usr/bin/prometheus-postgres-exporter';
const QUERIES = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../prometheus/outbox-queries.yaml');

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// "name{labels} value" lines of one family, by endpoint label, and the family's TYPE.
function family(text, name) {
  const type = new RegExp(`^# TYPE ${name} (\\w+)$`, 'm').exec(text)?.[1];
  const values = {};
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
    const endpoint = /endpoint="([^"]*)"/.exec(m[1])?.[1];
    values[endpoint] = Number(m[2]);
  }
  return { type, values };
}

// Runs the exporter with the query file against `dsns` until /metrics has
// outbox series; returns { text, exporter } (kill it when done).
async function scrape(dsns, extraArgs = []) {
  const port = await freePort();
  const exporter = spawn(EXPORTER, [`--web.listen-address=127.0.0.1:${port}`, `--extend.query-path=${QUERIES}`,
                                    '--disable-default-metrics', '--disable-settings-metrics', ...extraArgs], {
    env: { ...process.env, DATA_SOURCE_NAME: dsns.join(',') },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  exporter.stderr.on('data', (d) => { stderr += d; });
  try {
    const text = await waitFor(async () => {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      const body = await res.text();
      return res.ok && /^outbox_pending\{/m.test(body) ? body : null;
    }, { timeout: 20000, message: `outbox metrics from the exporter (its log: ${stderr})` });
    return { text, exporter };
  } catch (err) {
    exporter.kill();
    throw err;
  }
}

describe('prometheus', () => {
  test('the exporter serves outbox.stats per endpoint with the query file', { skip: fs.existsSync(EXPORTER) ? false : `${EXPORTER} is not installed` }, async () => {
    let failing = false;
    const { cluster, destroy } = await startWithReceiver({ respond: () => ({ status: failing ? 500 : 204 }) });
    let exporter;
    try {
      const ids = (await cluster.query("SELECT array_agg(outbox.enqueue('t', '{}')) AS ids FROM generate_series(1, 25)")).rows[0].ids;
      await waitFor(async () => Number((await cluster.query("SELECT delivered FROM outbox.stats WHERE endpoint = 'default'")).rows[0].delivered) === ids.length,
        { message: 'all delivered and counted' });
      failing = true;
      await cluster.query("SELECT outbox.enqueue('t', '{}')");
      await waitFor(async () => Number((await cluster.query("SELECT failed_attempts FROM outbox.stats WHERE endpoint = 'default'")).rows[0].failed_attempts) >= 1,
        { message: 'a failed attempt counted' });
      await cluster.reload({ 'outbox.paused': 'on' });  // the figures hold still while they are compared
      // ... once the failed delivery's retry time has passed: before it, the
      // delivery turns from waiting to due between the scrape and the query.
      await waitFor(async () => Number((await cluster.query("SELECT due FROM outbox.stats WHERE endpoint = 'default'")).rows[0].due) === 1,
        { message: 'the failed delivery due again' });
      await cluster.query("SELECT outbox.create_endpoint('idle', 'http://127.0.0.1:9/')");

      const dsn = `host=${cluster.dir} port=${cluster.port} user=postgres dbname=${cluster.database} sslmode=disable`;
      let metrics;
      ({ text: metrics, exporter } = await scrape([dsn]));

      const { rows } = await cluster.query(`SELECT endpoint, pending, due, retrying, in_flight, dead,
                                                   EXTRACT(epoch FROM lag)::float8 AS lag, delivered, failed_attempts,
                                                   consecutive_failures, enabled::int AS enabled
                                            FROM outbox.stats`);
      const expected = {
        outbox_pending: ['gauge', 'pending'], outbox_due: ['gauge', 'due'], outbox_retrying: ['gauge', 'retrying'],
        outbox_in_flight: ['gauge', 'in_flight'], outbox_dead: ['gauge', 'dead'],
        outbox_delivered_total: ['counter', 'delivered'], outbox_failed_attempts_total: ['counter', 'failed_attempts'],
        outbox_consecutive_failures: ['gauge', 'consecutive_failures'], outbox_enabled: ['gauge', 'enabled'],
      };
      for (const [name, [type, column]] of Object.entries(expected)) {
        const f = family(metrics, name);
        assert.equal(f.type, type, `${name} is a ${type}`);
        assert.deepEqual(Object.keys(f.values).sort(), ['default', 'idle'], `${name} has a series per endpoint`);
        for (const row of rows) assert.equal(f.values[row.endpoint], Number(row[column]), `${name}{endpoint="${row.endpoint}"}`);
      }
      assert.equal(family(metrics, 'outbox_delivered_total').values.default, 25);
      assert.ok(family(metrics, 'outbox_failed_attempts_total').values.default >= 1);
      const p50 = family(metrics, 'outbox_latency_p50_seconds').values.default;
      assert.ok(p50 > 0 && p50 < 5, `latency p50 ${p50} s`);
      assert.ok(Number.isNaN(family(metrics, 'outbox_latency_p50_seconds').values.idle), 'no latency without deliveries');
      assert.ok(family(metrics, 'outbox_last_success_timestamp_seconds').values.default > Date.now() / 1000 - 600);
      assert.ok(family(metrics, 'outbox_lag_seconds').values.default >= 0);
    } finally {
      exporter?.kill();
      await destroy();
    }
  });
  test('one exporter serves the databases of a server, each series labelled with its database', { skip: fs.existsSync(EXPORTER) ? false : `${EXPORTER} is not installed` }, async () => {
    const sink = await startSink({ secrets: [TEST_SECRET] });
    const cluster = await startServingAll();
    let exporter;
    try {
      const delivered = { shop: 3, billing: 5 };
      for (const [db, n] of Object.entries(delivered)) {
        await createDatabase(cluster, db, { sink });
        await sink.waitForIds(await enqueue(cluster, db, n));
      }
      for (const [db, n] of Object.entries(delivered)) {
        await waitFor(async () => Number((await cluster.query(
          "SELECT delivered FROM outbox.stats WHERE endpoint = 'own'", [], db)).rows[0].delivered) === n,
        { message: `${n} counted in ${db}` });
      }
      const dsn = (db) => `host=${cluster.dir} port=${cluster.port} user=postgres dbname=${db} sslmode=disable`;
      let text;
      ({ text, exporter } = await scrape([dsn('shop'), dsn('billing')], ['--no-collector.database', '--no-collector.bgwriter']));
      const series = {};
      for (const m of text.matchAll(/^outbox_delivered_total\{([^}]*)\} (\S+)$/gm)) {
        const database = /database="([^"]*)"/.exec(m[1])[1];
        const endpoint = /endpoint="([^"]*)"/.exec(m[1])[1];
        series[`${database}/${endpoint}`] = Number(m[2]);
      }
      assert.deepEqual(series, { 'shop/default': 0, 'shop/own': 3, 'billing/default': 0, 'billing/own': 5 });
    } finally {
      exporter?.kill();
      await cluster.destroy();
      await sink.close();
    }
  });
});
