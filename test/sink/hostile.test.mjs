// Hostile brokers (test/lib/fake_brokers.mjs) against the sinks, through
// sink_tool: whatever a peer sends, a sink holds at most
// outbox.max_reply_size of it (sink_tool reports its own private memory and
// its peak), a connection with an unfinished or oversized reply is closed,
// and a peer that stalls its handshake never holds up another broker
// served by the same loop. A healthy nats-server is the neighbour.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { natsAddStream, startNats, waitFor } from '../lib/brokers.mjs';
import { fakeAmqp, fakeNats, fakeRedis } from '../lib/fake_brokers.mjs';
import { startHostilePeers } from '../lib/hostile.mjs';
import { SinkTool, eventId } from './tool.mjs';

const MiB = 1024;  // in the kB sink_tool reports
// What a sink may add to the process for one hostile peer: the cap (64 kB),
// one read, the library's buffers, malloc's slack. Far below what each case
// took before it was capped (100 MB to GiBs). A sanitized sink_tool
// (scripts/test.sh) counts its shadow memory and quarantine too.
const bounded = (sanitized) => (sanitized ? 48 : 8) * MiB;

let nextId = 1;
const id = () => eventId(700000 + nextId++);

// Sends one message to the peer and returns its outcome and how much the
// process grew (peak over the baseline) while it was handled, and after.
async function oneMessage(url, { timeout = 3000, settle = 1000, ...options } = {}) {
  const sink = new SinkTool(url, { connectTimeout: 3000, ...options });
  const base = await sink.memory();
  const outcome = await sink.send({ id: id(), timeout });
  // Give a peer that keeps sending the time to (not) fill memory.
  await new Promise((resolve) => setTimeout(resolve, settle));
  const after = await sink.memory();
  await sink.close();
  return { outcome, grew: after.peak_anon_kb - base.anon_kb, held: after.anon_kb - base.anon_kb,
           bound: bounded(after.sanitizer !== '') };
}

describe('memory is bounded by outbox.max_reply_size, not by the peer', () => {
  test('Redis answering XADD with $2147483647 and endless bytes: refused at the cap, connection closed', async () => {
    const peer = await fakeRedis('endless-bulk');
    const { outcome, grew, bound } = await oneMessage(peer.url('/s'));
    assert.deepEqual([outcome.acked, outcome.status], [false, 0]);
    assert.match(outcome.error, /Redis sent a reply larger than 65536 bytes \(outbox\.max_reply_size\)/);
    assert.ok(grew < bound, `grew ${grew} kB`);
    await waitFor(() => peer.open === 0, { message: 'the connection closed' });
    await peer.close();
  });

  test('Redis answering with *2147483647 and endless elements: refused before hiredis allocates the array', async () => {
    const peer = await fakeRedis('wide-array');
    const { outcome, grew, bound } = await oneMessage(peer.url('/s'));
    assert.match(outcome.error, /larger than 65536 bytes/);
    assert.ok(grew < bound, `grew ${grew} kB`);
    await peer.close();
  });

  test('a smaller max_reply_size refuses sooner', async () => {
    const peer = await fakeRedis('endless-bulk');
    const { outcome } = await oneMessage(peer.url('/s'), { maxReply: 8192 });
    assert.match(outcome.error, /larger than 8192 bytes/);
    await peer.close();
  });

  test('a Redis reply to no command closes the connection instead of aborting the process', async () => {
    // hiredis 0.14 assert()s on it: the worker would crash, and PostgreSQL
    // restart every session.
    const peer = await fakeRedis('extra-replies');
    const sink = new SinkTool(peer.url('/s'));
    const first = await sink.send({ id: id() });
    assert.equal(first.acked, true);  // the first stream id answers the XADD
    const second = await sink.send({ id: id() });
    assert.equal(second.acked, true, JSON.stringify(second));  // on a fresh connection
    await sink.close();  // exit 0: no abort
    assert.ok(peer.connections >= 2, `${peer.connections} connections`);
    await peer.close();
  });

  test('a Redis command without a reply by its deadline closes the connection', async () => {
    const peer = await fakeRedis('silent');
    const sink = new SinkTool(peer.url('/s'));
    const o = await sink.send({ id: id(), timeout: 500 });
    assert.match(o.error, /timeout: no reply from Redis in 500 ms/);
    await waitFor(() => peer.open === 0, { message: 'the connection closed after the timeout' });
    await sink.close();
    await peer.close();
  });

  test('a NATS server sending a 100 MB message: closed at the cap, the process stays small', async () => {
    const peer = await fakeNats('big-message');
    const { outcome, grew, held, bound } = await oneMessage(peer.url('/s'));
    assert.equal(outcome.acked, false);
    assert.match(outcome.error, /the NATS server sent more than 65536 bytes without completing a message/);
    assert.ok(grew < bound, `grew ${grew} kB`);
    assert.ok(held < bound, `holds ${held} kB`);
    await waitFor(() => peer.open === 0, { message: 'the connection closed' });
    await peer.close();
  });

  test('a NATS -ERR flood after connecting: the message fails with the server\'s error, intact', async () => {
    const peer = await fakeNats('err-after-connect');
    // At the default reply cap: libnats parses each read (32 kB at most)
    // whole, and the first -ERR closes the connection. (Once the cap closed
    // it first: the count of bytes read came out wrapped, see
    // test/unit/bytes_consumed_test.cpp.)
    const { outcome, grew, bound } = await oneMessage(peer.url('/s'));
    assert.equal(outcome.acked, false);
    // The text of libnats' last error, read on the sink's thread only: once it
    // came out with its first byte overwritten by a libnats thread.
    assert.match(outcome.error, /^connection lost: Unknown Protocol Operation$/);
    assert.ok(grew < bound, `grew ${grew} kB`);
    await peer.close();
  });

  for (const behaviour of ['garbage', 'truncated']) {
    test(`an AMQP peer sending ${behaviour} frames: login fails, memory bounded`, async () => {
      const peer = await fakeAmqp(behaviour);
      const { outcome, grew, bound } = await oneMessage(peer.url('/'));
      assert.equal(outcome.acked, false);
      assert.match(outcome.error, /login failed|not connected/);
      assert.ok(grew < bound, `grew ${grew} kB`);
      await peer.close();
    });
  }

  // rabbitmq-c keeps what it decoded in the connection's pool, whose pages
  // stay allocated for the connection's life: read without releasing, 16
  // MiB of connection.blocked frames took 33 MiB of a worker for good.
  test('an AMQP peer flooding connection.blocked after the handshake: the message times out, memory bounded', async () => {
    const set = await startHostilePeers({ only: ['amqp-blocked-flood'] });
    try {
      const { outcome, grew, held, bound } = await oneMessage(set.peers[0].url, { timeout: 2000, settle: 3000 });
      assert.equal(outcome.acked, false);
      assert.match(outcome.error, /^timeout: /);
      assert.ok(grew < bound, `grew ${grew} kB`);
      assert.ok(held < bound, `held ${held} kB`);
    } finally {
      await set.close();
    }
  });
});

describe('a broker that stalls its handshake holds up no other broker', () => {
  let nats;
  before(async () => {
    nats = await startNats();
    await natsAddStream(nats, { name: 'HEALTHY', subjects: ['healthy.>'] });
  });
  after(async () => { await nats?.stop(); });

  // The hostile connect may take 30 s (connect_timeout); its message gives
  // up after 5 s. Meanwhile the healthy sink in the same loop publishes:
  // before, each of its messages waited for the hostile connect.
  const cases = [
    ['NATS, silent (no INFO)', () => fakeNats('silent'), '/s'],
    ['NATS, garbage INFO', () => fakeNats('garbage-info'), '/s'],
    ['NATS, endless line for CONNECT', () => fakeNats('endless-line'), '/s'],
    ['NATS, silent after connecting', () => fakeNats('silent-after-connect'), '/s'],
    ['AMQP, silent', () => fakeAmqp('silent'), '/'],
    ['AMQP, truncated frame', () => fakeAmqp('truncated'), '/'],
    ['Redis, silent', () => fakeRedis('silent'), '/s'],
  ];
  for (const [name, start, path] of cases) {
    test(name, async () => {
      const peer = await start();
      const sink = new SinkTool([`${nats.url}/healthy.x`, peer.url(path)], { connectTimeout: 30000 });
      assert.equal((await sink.send({ id: id() })).acked, true);  // connected to the healthy one
      let hostileDone = false;
      const hostile = sink.sendTo(1, { id: id(), timeout: 5000 }).then((o) => { hostileDone = true; return o; });
      await waitFor(() => peer.connections > 0, { message: 'the hostile connect began' });
      for (let i = 0; i < 5; i++) {
        const o = await sink.send({ id: id() });
        assert.equal(o.acked, true, JSON.stringify(o));
      }
      assert.equal(hostileDone, false, 'the healthy messages were acknowledged while the hostile one still waited');
      const o = await hostile;
      assert.equal(o.acked, false);
      assert.match(o.error, /not connected .*in time|no reply from Redis|no PubAck/);
      // The connect still runs (up to 30 s): leaving abandons it.
      await sink.close();
      await peer.close();
    });
  }
});
