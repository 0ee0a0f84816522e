// Figures for issue 22, not a test: what hostile brokers
// (test/lib/fake_brokers.mjs) cost a process that drives sinks, and how
// long a healthy broker's publishes take beside a stalled handshake in the
// same loop. Point OUTBOX_SINK_TOOL at another build (an older commit's) to
// compare.
//   node test/sink/hostile_figures.mjs [memory|latency]...
import { natsAddStream, startNats } from '../lib/brokers.mjs';
import { fakeAmqp, fakeNats, fakeRedis } from '../lib/fake_brokers.mjs';
import { SinkTool, eventId } from './tool.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const which = process.argv.slice(2).length ? process.argv.slice(2) : ['memory', 'latency'];
let n = 1;
const mb = (kb) => (kb / 1024).toFixed(1);

// One message to the peer; private memory (RssAnon) before, at its peak
// during `watch` ms, and at the end.
async function memory(name, peer, path) {
  const sink = new SinkTool(peer.url(path), { connectTimeout: 2000 });
  const base = await sink.memory();
  let peak = 0;
  let last;
  const outcome = sink.send({ id: eventId(n++), timeout: 2000 }).catch((e) => ({ error: e.message.split('\n')[0] }));
  for (let i = 0; i < 10; i++) {
    await sleep(500);
    try {
      // A loop held in a connect does not answer.
      last = await Promise.race([sink.memory(), sleep(3000).then(() => { throw new Error('blocked'); })]);
      peak = Math.max(peak, last.peak_anon_kb);
    } catch {
      last = null;
      break;  // it died, or its loop is blocked
    }
  }
  const o = await Promise.race([outcome, sleep(3000).then(() => ({ error: 'no outcome: the loop is blocked' }))]);
  console.log(`${name.padEnd(34)} RssAnon ${mb(base.anon_kb).padStart(6)} MiB, peak ${mb(peak).padStart(7)} MiB, ` +
              `after 5 s ${last ? mb(last.anon_kb).padStart(7) : '      ?'} MiB  (${o.error?.slice(0, 70) || 'acknowledged'})`);
  sink.child.kill('SIGKILL');
  await peer.close();
}

if (which.includes('memory')) {
  await memory('Redis $2147483647, endless bytes', await fakeRedis('endless-bulk'), '/s');
  await memory('Redis *2147483647, endless :1', await fakeRedis('wide-array'), '/s');
  await memory('Redis reply to no command', await fakeRedis('extra-replies'), '/s');
  await memory('NATS 100 MB MSG', await fakeNats('big-message'), '/s');
  await memory('NATS -ERR flood after connect', await fakeNats('err-after-connect'), '/s');
  await memory('NATS endless line for CONNECT', await fakeNats('endless-line'), '/s');
  await memory('AMQP garbage', await fakeAmqp('garbage'), '/');
}

if (which.includes('latency')) {
  const nats = await startNats();
  await natsAddStream(nats, { name: 'HEALTHY', subjects: ['healthy.>'] });
  const cases = [
    ['NATS silent', () => fakeNats('silent'), '/s'],
    ['NATS garbage INFO', () => fakeNats('garbage-info'), '/s'],
    ['NATS -ERR flood', () => fakeNats('err-flood'), '/s'],
    ['AMQP garbage', () => fakeAmqp('garbage'), '/'],
    ['AMQP truncated frame', () => fakeAmqp('truncated'), '/'],
    ['AMQP silent', () => fakeAmqp('silent'), '/'],
    ['Redis silent', () => fakeRedis('silent'), '/s'],
  ];
  for (const [name, start, path] of [['(alone)', null, null], ...cases]) {
    const peer = start && await start();
    const sink = new SinkTool([`${nats.url}/healthy.x`, ...(peer ? [peer.url(path)] : [])], { connectTimeout: 2000 });
    await sink.send({ id: eventId(n++) });
    const latencies = [];
    // Each healthy publish right after one to the hostile peer (which
    // starts a connect whenever its backoff allows).
    for (let i = 0; i < 10; i++) {
      if (peer) sink.sendTo(1, { id: eventId(n++), timeout: 3000 }).catch(() => {});
      const started = Date.now();
      await sink.send({ id: eventId(n++) });
      latencies.push(Date.now() - started);
      await sleep(250);
    }
    latencies.sort((a, b) => a - b);
    console.log(`healthy NATS beside ${name.padEnd(22)} publish to ack: median ${String(latencies[5]).padStart(5)} ms, ` +
                `max ${String(latencies[9]).padStart(5)} ms`);
    sink.child.kill('SIGKILL');
    await peer?.close();
  }
  await nats.stop();
}
process.exit(0);
