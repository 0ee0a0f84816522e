// The usual end-to-end setting: a receiver that verifies with TEST_SECRET,
// and a cluster whose default endpoint (outbox.url, outbox.secret) is it.
import { startCluster } from './cluster.mjs';
import { startSink, TEST_SECRET } from './sink.mjs';

export async function startWithReceiver({ conf = {}, respond, ...options } = {}) {
  const sink = await startSink({ secrets: [TEST_SECRET], respond });
  let cluster;
  try {
    cluster = await startCluster({
      ...options,
      conf: { 'outbox.url': sink.url, 'outbox.secret': TEST_SECRET, ...conf },
    });
  } catch (err) {
    await sink.close();  // a listening receiver would keep the test process alive
    throw err;
  }
  return {
    cluster,
    sink,
    async destroy() {
      await cluster.destroy();
      await sink.close();
    },
  };
}

// A small seeded PRNG (mulberry32), so that a failing run can be replayed
// with OUTBOX_TEST_SEED.
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
