// 13. pg_net side by side (issue 16), when bench/run.sh --pg-net=DIR built
// it: the same 20,000 webhooks to the same nginx, each system on its own.
// Both are measured the same way: 100 requests per transaction committed as
// fast as one connection can, with delivery running, timed from the first
// commit until nginx has answered the last request (its request counter).
// outbox: outbox.enqueue(); pg_net: net.http_post(), whose responses are
// stored in net._http_response.
import { env, PAYLOAD } from './lib/env.mjs';
import { connect, one, resetQueue, setSystem, sleep } from './lib/pg.mjs';
import { SinkCounter } from './lib/sink.mjs';

const EVENTS = 20_000;
const PER_TXN = 100;
const DEADLINE_S = 600;

const producers = {
  outbox: `PERFORM outbox.enqueue('bench.pgnet', '${PAYLOAD}'::jsonb) FROM generate_series(1, ${PER_TXN})`,
  pgNet: `PERFORM net.http_post('http://127.0.0.1:${env.sinkPort}/hook', '${PAYLOAD}'::jsonb)
          FROM generate_series(1, ${PER_TXN})`,
};

async function run(client, system, log) {
  const sink = new SinkCounter();
  await sink.reset();
  const start = performance.now();
  await client.query(`DO $$
    BEGIN
      FOR i IN 1..${EVENTS / PER_TXN} LOOP
        ${producers[system]};
        COMMIT;
      END LOOP;
    END $$`);
  const enqueued = (performance.now() - start) / 1000;
  let answered = 0;
  while (performance.now() - start < DEADLINE_S * 1000) {
    answered = await sink.count();
    if (answered >= EVENTS) break;
    await sleep(50);
  }
  const seconds = (performance.now() - start) / 1000;
  log(`pg_net comparison: ${system}: ${answered} answered in ${seconds.toFixed(1)} s (enqueued in ${enqueued.toFixed(1)} s)`);
  return { answered, seconds, enqueueSeconds: enqueued, perSecond: answered / seconds, done: answered >= EVENTS };
}

export async function measurePgNet(log) {
  if (!process.env.BENCH_PGNET) return { skipped: 'run bench/run.sh --pg-net=DIR with a supabase/pg_net source tree' };
  const client = await connect();
  try {
    const version = (await one(client, "SELECT extversion FROM pg_extension WHERE extname = 'pg_net'")).extversion;
    await setSystem(client, { 'outbox.paused': 'off' });
    await resetQueue(client);
    const outbox = await run(client, 'outbox', log);
    await setSystem(client, { 'outbox.paused': 'on' });
    const pgNet = await run(client, 'pgNet', log);
    const failed = await one(client, 'SELECT count(*)::int AS n FROM net._http_response WHERE status_code IS DISTINCT FROM 204');
    return { version, events: EVENTS, outbox, pgNet, pgNetFailed: failed.n, ratio: outbox.perSecond / pgNet.perSecond };
  } finally {
    await setSystem(client, { 'outbox.paused': 'off' }).catch(() => {});
    await client.end();
  }
}
