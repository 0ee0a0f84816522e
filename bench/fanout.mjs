// 6. Fan-out: three endpoints (all on the nginx sink) that match every
// event, the default endpoint disabled; a backlog enqueued while paused,
// then drained as in drain.mjs. Deliveries/s against the single-endpoint
// drain rate of the same run.
import { env, scale } from './lib/env.mjs';
import { connect, resetQueue, setSystem } from './lib/pg.mjs';
import { enqueueBacklog, unpauseAndDrain } from './drain.mjs';

const ENDPOINTS = ['fan-a', 'fan-b', 'fan-c'];

export async function measureFanout(log) {
  const client = await connect();
  const n = scale.fanoutEvents;
  try {
    await setSystem(client, { 'outbox.paused': 'on' });
    await resetQueue(client);
    await client.query('VACUUM outbox.events, outbox.deliveries');
    await client.query("SELECT outbox.disable_endpoint('default', 'benchmark: fan-out')");
    for (const name of ENDPOINTS) {
      await client.query("SELECT outbox.create_endpoint($1, $2, '{*}')",
                         [name, `http://127.0.0.1:${env.sinkPort}/${name}`]);
    }
    log(`fan-out: enqueueing ${n.toLocaleString('en-US')} events for ${ENDPOINTS.length} endpoints while paused`);
    await enqueueBacklog(client, n, 'bench.fanout');
    const out = await unpauseAndDrain(client, n * ENDPOINTS.length, log, 'fan-out');
    return { events: n, endpoints: ENDPOINTS.length, ...out };
  } finally {
    await setSystem(client, { 'outbox.paused': 'on' }).catch(() => {});
    for (const name of ENDPOINTS) await client.query('SELECT outbox.drop_endpoint($1)', [name]).catch(() => {});
    await client.query("SELECT outbox.enable_endpoint('default')").catch(() => {});
    await resetQueue(client).catch(() => {});
    await setSystem(client, { 'outbox.paused': 'off' }).catch(() => {});
    await client.end();
  }
}
