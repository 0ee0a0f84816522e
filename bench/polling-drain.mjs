// 2c. The polling relay's drain rate, for comparison: a backlog in the
// hand-made outbox table, relayed to the same nginx sink.
import path from 'node:path';
import { env, scale, PAYLOAD } from './lib/env.mjs';
import { connect, one, sleep } from './lib/pg.mjs';
import { start } from './lib/proc.mjs';
import { SinkCounter } from './lib/sink.mjs';

export async function measurePollingDrain(log) {
  const client = await connect();
  const n = scale.pollingDrainEvents;
  const sink = new SinkCounter();
  const out = { events: n };
  let relay = null;
  try {
    await client.query('TRUNCATE plain_outbox');
    await client.query(`INSERT INTO plain_outbox (topic, key, payload)
                        SELECT 'bench.drain', NULL, $1::jsonb FROM generate_series(1, $2::int)`, [PAYLOAD, n]);
    await client.query('VACUUM ANALYZE plain_outbox');
    await sink.reset();
    log(`polling drain: ${n.toLocaleString('en-US')} rows`);
    const t0 = (await one(client, 'SELECT extract(epoch FROM clock_timestamp())::float8 AS t')).t;
    const start_ = performance.now();
    relay = start(process.execPath, [path.join(env.benchDir, 'polling-relay.mjs')], {
      env: { RELAY_URL: `http://127.0.0.1:${env.sinkPort}/hook`, PGHOST: env.pghost, PGPORT: String(env.pgport),
             PGDATABASE: 'bench', PGUSER: 'postgres', RELAY_MAX_SECONDS: '1800' },
      maxMs: 1_800_000,
    });
    const samples = [];
    const deadline = start_ + Math.max(120, n / 200) * 1000;
    let done = false;
    while (performance.now() < deadline) {
      await sleep(250);
      const delivered = await sink.count();
      samples.push([(performance.now() - start_) / 1000, delivered]);
      if (delivered >= n || samples.length % 8 === 0) {
        const r = await one(client, 'SELECT NOT EXISTS (SELECT 1 FROM plain_outbox WHERE published_at IS NULL) AS done');
        if (r.done) { done = true; break; }
      }
    }
    const r = await one(client, `SELECT count(published_at)::int AS published,
                                        extract(epoch FROM max(published_at))::float8 AS last FROM plain_outbox`);
    out.done = done;
    out.published = r.published;
    out.seconds = r.last - t0;
    out.eventsPerSecond = r.published / out.seconds;
    out.samples = samples;
    log(`polling drain: ${r.published} in ${out.seconds.toFixed(1)} s = ${Math.round(out.eventsPerSecond)} events/s`);
  } finally {
    if (relay) await relay.stop();
    await client.query('TRUNCATE plain_outbox').catch(() => {});
    await client.end();
  }
  return out;
}
