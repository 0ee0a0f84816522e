// 15. Hostile peers (issue 22): one healthy webhook receiver (bench's
// receiver.mjs, the default endpoint) measured alone, then beside the
// hostile set of test/lib/hostile.mjs (HTTP and TLS misbehaving, fake
// NATS, AMQP and Redis servers; in a child process), each an endpoint
// subscribed to the same events: commit-to-2xx p50 / p99 of the healthy
// endpoint, its failed attempts, and the workers' private memory (before,
// peak, after), side by side in one run. Settings as the test's
// (test/e2e/hostile.test.mjs): max_in_flight 256, so that 40 endpoints get
// 6 requests each; connect_timeout 2 s; each hostile delivery one attempt of
// at most 1 s. Unlike the test, commits wait for their fsync.
import { scale } from './lib/env.mjs';
import { connect, one, resetQueue, setSystem, sleep, workerPids } from './lib/pg.mjs';
import { startReceiver } from './receiver.mjs';
import { env } from './lib/env.mjs';
import { commitEvents, createHostileEndpoints, latencySummary, privateKiB, startHostilePeers }
  from '../test/lib/hostile.mjs';

const INTERVAL_MS = 25;
const SETTINGS = { 'outbox.max_in_flight': '256', 'outbox.connect_timeout': '2s', 'outbox.request_timeout': '2s' };

// Samples every worker's private memory until stop(): { before, peak } of
// the one that grew most, in KiB.
function sampleWorkers(pids) {
  const first = pids.map(privateKiB);
  const peak = [...first];
  const timer = setInterval(() => pids.forEach((pid, i) => { peak[i] = Math.max(peak[i], privateKiB(pid) ?? 0); }), 100);
  return {
    stop() {
      clearInterval(timer);
      let worst = 0;
      pids.forEach((_, i) => { if (peak[i] - first[i] > peak[worst] - first[worst]) worst = i; });
      return { pid: pids[worst], before: first[worst], peak: peak[worst] };
    },
  };
}

async function failedAttempts(client) {
  return Number((await one(client, "SELECT failed_attempts FROM outbox.stats WHERE endpoint = 'default'")).failed_attempts);
}

async function phase(client, receiver, pids, count) {
  const sampler = sampleWorkers(pids);
  const failedBefore = await failedAttempts(client);
  const commits = await commitEvents(client, { count, intervalMs: INTERVAL_MS, topic: 'bench.hostile' });
  const deadline = performance.now() + 120_000;
  while (performance.now() < deadline && [...commits.keys()].some((id) => !receiver.state.receipts.has(id))) await sleep(50);
  const latency = latencySummary(commits, (id) => receiver.state.receipts.get(id));
  return { ...latency, failedAttempts: (await failedAttempts(client)) - failedBefore, sampler };
}

export async function measureHostile(log) {
  const n = scale.hostileEvents;
  const client = await connect();
  const receiver = await startReceiver();
  let peers = null;
  const out = { events: n, intervalMs: INTERVAL_MS };
  try {
    await resetQueue(client);
    await setSystem(client, { ...SETTINGS, 'outbox.url': `http://127.0.0.1:${receiver.port}/hook`, 'outbox.paused': 'off' });
    await sleep(300);
    const pids = await workerPids(client);
    await commitEvents(client, { count: 20, intervalMs: 10, topic: 'bench.warm' });
    await sleep(500);

    log(`hostile: the healthy endpoint alone, ${n} events, one every ${INTERVAL_MS} ms`);
    const alone = await phase(client, receiver, pids, n);
    out.alone = { ...alone, memory: alone.sampler.stop() };
    delete out.alone.sampler;

    peers = await startHostilePeers();
    await createHostileEndpoints((sql, params) => client.query(sql, params), peers.peers);
    log(`hostile: beside ${peers.peers.length} hostile endpoints, ${n} events`);
    const started = performance.now();
    const beside = await phase(client, receiver, pids, n);
    for (const d = performance.now() + 180_000; performance.now() < d;) {
      if ((await one(client, "SELECT count(*)::int AS n FROM outbox.deliveries WHERE endpoint_id <> 0 AND state = 'pending'")).n === 0) break;
      await sleep(500);
    }
    out.hostileSeconds = (performance.now() - started) / 1000;
    const memory = beside.sampler.stop();
    delete beside.sampler;
    // With the peers still there: what the workers held for them must go.
    let after = privateKiB(memory.pid);
    for (const d = performance.now() + 20_000; performance.now() < d && after - memory.before > 16 * 1024;) {
      await sleep(250);
      after = privateKiB(memory.pid);
    }
    out.beside = { ...beside, memory: { ...memory, after } };
    out.peers = peers.peers.length;
    out.hostile = await one(client, `
      SELECT count(*) FILTER (WHERE state = 'dead' AND coalesce(last_error, '') <> '')::int AS failed_with_reason,
             count(*) FILTER (WHERE state = 'delivered')::int AS delivered,
             count(*) FILTER (WHERE state = 'pending')::int AS pending,
             count(*)::int AS total
      FROM outbox.deliveries WHERE endpoint_id <> 0`);
    out.trap = (await peers.stats()).trap;
    out.workerRestarts = (await workerPids(client)).join() !== pids.join();
    log(`hostile: alone p50 ${out.alone.p50.toFixed(1)} / p99 ${out.alone.p99.toFixed(1)} ms; beside p50 ` +
        `${out.beside.p50.toFixed(1)} / p99 ${out.beside.p99.toFixed(1)} ms, ${out.beside.failedAttempts} failed attempts; ` +
        `memory ${Math.round(memory.before / 1024)} -> peak ${Math.round(memory.peak / 1024)} -> ${Math.round(after / 1024)} MiB`);
  } finally {
    if (peers) {
      for (const p of peers.peers) await client.query('SELECT outbox.drop_endpoint($1)', [p.name]).catch(() => {});
      await peers.close();
    }
    const reset = Object.fromEntries(Object.keys(SETTINGS).map((k) => [k, null]));
    await setSystem(client, { ...reset, 'outbox.url': `http://127.0.0.1:${env.sinkPort}/hook`, 'outbox.paused': 'on' })
      .catch(() => {});
    await resetQueue(client).catch(() => {});
    await receiver.close();
    await client.end();
  }
  return out;
}
