// Soak: minutes of mixed load against a receiver that fails at random, with
// a worker restart in the middle. Checks that every committed event arrives
// and prints the worker's memory (RSS) at start and end.
// Run: bash scripts/soak.sh [minutes]   (loopback only; bounded in time)
import assert from 'node:assert/strict';
import fs from 'node:fs';

import { startCluster, waitFor } from './lib/cluster.mjs';
import { prng } from './lib/setup.mjs';
import { startSink, TEST_SECRET } from './lib/sink.mjs';

const minutes = Number(process.argv[2] || 3);
const seed = Number(process.env.OUTBOX_TEST_SEED || 7);
const random = prng(seed);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// Private memory (RssAnon): VmRSS also counts the shared buffers the worker
// touched, which grows with the data it reads and says nothing of leaks.
const rss = (pid) => {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/RssAnon:\s+(\d+) kB/);
  return m ? Number(m[1]) : NaN;
};

const sink = await startSink({
  secrets: [TEST_SECRET],
  respond: () => {
    const r = random();
    if (r < 0.05) return { status: 500 };
    if (r < 0.051) return { status: 503, headers: { 'retry-after': '1' } };  // pauses the endpoint: keep it rare
    if (r < 0.07) return { destroy: true };
    if (r < 0.09) return { status: 204, delay: 200 };
    return { status: 204 };
  },
});
const cluster = await startCluster({
  conf: { 'outbox.url': sink.url, 'outbox.secret': TEST_SECRET, 'outbox.max_attempts': 50, 'outbox.retention': '30s' },
});
try {
  const [pid] = await waitFor(async () => {
    const pids = await cluster.workerPids();
    return pids.length ? pids : null;
  }, { message: 'the worker' });
  const startRss = rss(pid);
  console.log(`soak: ${minutes} min, seed ${seed}; worker ${pid} private memory (RssAnon) at start ${startRss} kB`);
  const committed = [];
  const deadline = Date.now() + minutes * 60000;
  let restarted = false;
  let peakRss = startRss;
  let lastReport = Date.now();
  while (Date.now() < deadline) {
    const n = 1 + Math.floor(random() * 20);
    const keyed = random() < 0.5;
    const { rows } = await cluster.query(
      `SELECT array_agg(outbox.enqueue('soak.' || (i % 5), jsonb_build_object('i', i, 'pad', repeat('x', (i * 37) % 900)),
                                       key => CASE WHEN $2 THEN 'k' || (i % 50) END)) AS ids
       FROM generate_series(1, $1::int) AS i`, [n, keyed]);
    committed.push(...rows[0].ids);
    if (!restarted && Date.now() > deadline - (minutes * 60000) / 2) {
      await cluster.restart();
      restarted = true;
    }
    const [now] = await cluster.workerPids();
    if (now === pid) peakRss = Math.max(peakRss, rss(pid));
    if (Date.now() - lastReport > 15000) {
      lastReport = Date.now();
      console.log(`soak: ${committed.length} committed, ${sink.ids().size} received`);
    }
    await sleep(random() * 40);  // a steady mixed load (a few hundred events/s), not an overload
  }
  await sink.waitForIds(committed, { timeout: 120000 });
  const [pidEnd] = await cluster.workerPids();
  const endRss = rss(pidEnd);
  console.log(`soak: ${committed.length} committed, all ${sink.ids().size} distinct ids received, ` +
    `${sink.requests.length - sink.ids().size} extra requests (failures and duplicates)`);
  console.log(`soak: worker private memory (RssAnon) at start ${startRss} kB, peak before restart ${peakRss} kB, at end ${endRss} kB (pid ${pidEnd})`);
  await waitFor(async () => (await cluster.counts()).pending === 0, { timeout: 60000, message: 'all recorded' });
  assert.ok(committed.every((id) => sink.byId(id).length > 0));
  console.log('1 passed, 0 failed');
} finally {
  await cluster.destroy();
  await sink.close();
}
