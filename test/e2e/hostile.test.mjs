// Hostile peers cost only their own deliveries (issue 22): one healthy
// webhook receiver (real HTTP, signatures verified with standardwebhooks)
// measured alone, then beside every peer of test/lib/hostile.mjs (HTTP and
// TLS misbehaving in every way we know, fake NATS, AMQP and Redis servers
// sending garbage, oversized, truncated and endless frames, error floods,
// stalled handshakes), each an endpoint subscribed to the same events.
// The server's processes must survive with stable pids; every hostile
// delivery fails with a reason and follows no redirect; the healthy
// endpoint gets every event at the first attempt, and its commit-to-2xx
// p99 stays far below the peers' timeouts (bench/hostile.mjs measures it
// against issue 22's 100 ms); the worker's private memory grows by at
// most 64 MiB and comes back down while the peers are still there.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { startCluster, waitFor } from '../lib/cluster.mjs';
import { commitEvents, cpuSeconds, createHostileEndpoints, latencySummary, privateKiB, sampleMemory,
         sampleStates, startHostilePeers } from '../lib/hostile.mjs';
import { startSink, TEST_SECRET } from '../lib/sink.mjs';

const EVENTS = Number(process.env.OUTBOX_HOSTILE_EVENTS || 200);  // per phase
const INTERVAL_MS = 25;
const MiB = 1024;  // in KiB, as privateKiB() counts
const clock = () => Number(process.hrtime.bigint()) / 1e6;
// Under a sanitizer (scripts/e2e-asan.sh) memory and time say nothing of
// the library: the peers run, and what they may do to it is checked there.
const sanitized = process.env.OUTBOX_E2E_PRELOAD ? 'the server runs under a sanitizer' : false;
const fmt = (x) => (Number.isFinite(x) ? x.toFixed(1) : String(x));

describe('hostile peers beside a healthy endpoint', () => {
  let cluster;
  let sink;
  let set;
  let client;
  let postmaster;
  let workers;
  let alone;
  const run = {};  // what the hostile phase measured

  const arrival = (id) => {
    const got = sink.byId(id);
    return got.length ? Number(got[0].receivedAtNs) / 1e6 : undefined;
  };
  const postmasterPid = () => Number(fs.readFileSync(path.join(cluster.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);

  before(async () => {
    sink = await startSink({ secrets: [TEST_SECRET] });
    // OUTBOX_HOSTILE_PEERS=http,tls,redis-stall runs some of them only.
    set = await startHostilePeers({ only: process.env.OUTBOX_HOSTILE_PEERS?.split(',') });
    cluster = await startCluster({
      conf: {
        'outbox.url': sink.url,
        'outbox.secret': TEST_SECRET,
        // Each endpoint gets an equal share of the worker's requests: with
        // 40 endpoints, 256 gives each 7 (the default 64 would give 2, and
        // the silent peers would take minutes to time out).
        'outbox.max_in_flight': 256,
        'outbox.connect_timeout': '2s',
        'outbox.request_timeout': '2s',
        // The worker records the hostile failures in transactions of its
        // own; on this shared machine each commit's fsync can take hundreds
        // of milliseconds, which the healthy endpoint would wait for. The
        // bound is on what peers do to the worker, not on the disk
        // (bench/hostile.mjs measures with the defaults).
        synchronous_commit: 'off',
        // OUTBOX_HOSTILE_CONF='{"outbox.max_in_flight": 64}' tries other settings.
        ...JSON.parse(process.env.OUTBOX_HOSTILE_CONF || '{}'),
      },
    });
    client = await cluster.client();
    postmaster = postmasterPid();
    workers = await waitFor(async () => {
      const pids = await cluster.workerPids();
      return pids.length === 1 && pids;
    }, { message: 'the worker to start' });
    // Warm: connections to the receiver are open, plans prepared.
    const warm = await commitEvents(client, { count: 20, intervalMs: 10, clock });
    await sink.waitForIds(warm.keys());
  });
  after(async () => {
    await client?.end();
    await cluster?.destroy();
    await set?.close();
    await sink?.close();
  });

  test('the healthy endpoint alone', async (t) => {
    const commits = await commitEvents(client, { count: EVENTS, intervalMs: INTERVAL_MS, clock });
    await sink.waitForIds(commits.keys());
    alone = latencySummary(commits, arrival);
    t.diagnostic(`alone: ${alone.count} events, commit-to-2xx p50 ${fmt(alone.p50)} ms, p99 ${fmt(alone.p99)} ms, ` +
                 `max ${fmt(alone.max)} ms; worker private memory ${Math.round(privateKiB(workers[0]) / MiB)} MiB`);
  });

  test('beside the hostile set: the server\'s processes survive', { timeout: 300000 }, async (t) => {
    assert.ok(alone, 'the healthy endpoint was measured alone first');
    const sampler = sampleMemory(workers[0]);
    const watcher = await cluster.client();  // one connection for the samples, not one each
    const states = sampleStates(workers[0], (sql, params) => watcher.query(sql, params));
    const started = Date.now();
    const cpuBefore = cpuSeconds(workers[0]);
    let commits;
    try {
      await createHostileEndpoints((sql, params) => cluster.query(sql, params), set.peers);
      commits = await commitEvents(client, { count: EVENTS, intervalMs: INTERVAL_MS, clock });
      run.produced = Date.now();
      // Deadlines, not expectations: a worker that is blocked fails the
      // tests below with what it managed by then.
      await sink.waitForIds(commits.keys(), { timeout: 60000 }).catch((err) => t.diagnostic(err.message));
      run.healthy = { ...latencySummary(commits, arrival), ids: [...commits.keys()] };
      run.finished = await waitFor(async () => (await cluster.query(
        "SELECT count(*)::int AS n FROM outbox.deliveries WHERE endpoint_id <> 0 AND state = 'pending'")).rows[0].n === 0
        && Date.now(), { timeout: 120000, interval: 500, message: 'every hostile delivery to finish' })
        .catch((err) => t.diagnostic(err.message));
    } finally {
      run.memory = sampler.stop();
      run.stuck = states.stop();
      await watcher.end();
      const cpuAfter = cpuSeconds(workers[0]);
      run.cpu = cpuAfter === null ? NaN : cpuAfter - cpuBefore;  // NaN: the worker is gone
    }
    t.diagnostic(`${set.peers.length} hostile peers, ${EVENTS} events committed in ${((run.produced - started) / 1000).toFixed(1)} s; ` +
                 (run.finished ? `every hostile delivery finished ${((run.finished - started) / 1000).toFixed(1)} s after the first`
                               : 'hostile deliveries still pending') +
                 `; the worker used ${fmt(run.cpu)} s of CPU in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    assert.equal(postmasterPid(), postmaster, 'the postmaster is the same process');
    assert.deepEqual(await cluster.workerPids(), workers, 'the worker is the same process');
    assert.doesNotMatch(cluster.log(), /terminated by signal|exited with exit code|PANIC|server process .* was terminated/,
                        'no server process died');
  });

  test('every hostile delivery fails with a reason; no redirect is followed', async (t) => {
    assert.ok(run.memory, 'the hostile set ran');
    const { rows } = await cluster.query(`
      SELECT ep.name, d.state, count(*)::int AS n, count(*) FILTER (WHERE coalesce(d.last_error, '') = '')::int AS no_reason,
             max(d.attempts) AS attempts, array_agg(DISTINCT d.last_status) AS statuses,
             array_agg(DISTINCT left(d.last_error, 60)) AS errors
      FROM outbox.deliveries AS d JOIN outbox.endpoints AS ep ON ep.id = d.endpoint_id
      WHERE d.endpoint_id <> 0 GROUP BY ep.name, d.state ORDER BY ep.name, d.state`);
    const { trap, connections } = await set.stats();
    for (const r of rows) {
      t.diagnostic(`${r.name.padEnd(24)} ${r.state.padEnd(9)} ${String(r.n).padStart(4)}  status ${r.statuses.join('/')}  ` +
                   `${connections[r.name]} connections  ${r.errors.slice(0, 3).join(' | ')}`);
    }
    const byPeer = new Map(set.peers.map((p) => [p.name, []]));
    for (const r of rows) byPeer.get(r.name)?.push(r);
    for (const peer of set.peers) {
      assert.deepEqual(byPeer.get(peer.name).map((r) => [r.state, r.n, r.no_reason, r.attempts]), [['dead', EVENTS, 0, 1]],
                       `${peer.name} (${peer.why}): every delivery dead after one failed attempt with a reason`);
    }
    // The status recorded is the 3xx (none where the attempt timed out
    // first, on a busy machine), and the loopback receiver it named saw
    // nothing.
    for (const peer of set.peers.filter((p) => p.redirect)) {
      const statuses = byPeer.get(peer.name).flatMap((r) => r.statuses);
      assert.ok(statuses.every((s) => s === 302 || s === 307 || s === null), `${peer.name}: statuses ${statuses}`);
      assert.ok(statuses.some((s) => s === 302 || s === 307), `${peer.name}: no 3xx recorded`);
    }
    assert.equal(trap, 0, 'the redirect target got no request');
  });

  test('the healthy endpoint beside them: every event at the first attempt, never held for a timeout',
       { skip: sanitized }, async (t) => {
    const beside = run.healthy;
    assert.ok(alone && beside, 'both phases ran');
    t.diagnostic(`healthy alone:  p50 ${fmt(alone.p50)} ms, p99 ${fmt(alone.p99)} ms, max ${fmt(alone.max)} ms`);
    t.diagnostic(`healthy beside: p50 ${fmt(beside.p50)} ms, p99 ${fmt(beside.p99)} ms, max ${fmt(beside.max)} ms ` +
                 `(${beside.count} of ${EVENTS} arrived)`);
    const { rows } = await cluster.query(`
      SELECT count(*) FILTER (WHERE state = 'delivered' AND attempts = 1)::int AS first_time,
             count(*)::int AS n
      FROM outbox.deliveries WHERE endpoint_id = 0 AND event_id = ANY($1::uuid[])`, [beside.ids]);
    const stats = (await cluster.query("SELECT failed_attempts FROM outbox.stats WHERE endpoint = 'default'")).rows[0];
    t.diagnostic(`healthy failed attempts: ${stats.failed_attempts}`);
    // Where the slowest deliveries' time went, on the server's clock: from
    // the enqueue to the dispatch, from there to the request's start, and
    // the request.
    const slow = (await cluster.query(`
      SELECT round(extract(epoch FROM d.created_at - e.created_at) * 1000) AS dispatch_ms,
             round(extract(epoch FROM d.last_attempt_at - d.created_at) * 1000) AS start_ms,
             round(extract(epoch FROM d.last_duration) * 1000) AS request_ms
      FROM outbox.deliveries AS d JOIN outbox.events AS e ON e.id = d.event_id
      WHERE d.endpoint_id = 0 AND d.event_id = ANY($1::uuid[])
      ORDER BY d.finished_at - e.created_at DESC LIMIT 3`, [beside.ids])).rows;
    t.diagnostic(`slowest healthy deliveries (ms to dispatch / to start / request): ${
      slow.map((r) => `${r.dispatch_ms}/${r.start_ms}/${r.request_ms}`).join(', ')}`);
    // Not blocked: a worker that waits on a peer (a stalled handshake, a
    // silent server) holds every delivery for the 2 s connect or request
    // timeout. The bound is a quarter of that, not issue 22's 100 ms:
    // tests do not assert on wall-clock speed, and the worker is busy with
    // 39 peers' bytes on a shared 2-core machine (here p99 55–93 ms, CI's
    // once 130 ms). bench/hostile.mjs reports the figure against 100 ms.
    const unblocked = beside.p99 < alone.p99 + 500;
    // The worker's longest unchanged states while the peers ran (a stall
    // shows here as one long stretch: its wait, or the kernel function it
    // sleeps in), and what the server logged of locks and vacuums.
    t.diagnostic(`the worker's longest unchanged states: ${
      run.stuck.map((r) => `${Math.round(r.ms)} ms ${r.what}`).join(' | ')}`);
    if (!unblocked) {
      for (const line of cluster.log().split('\n').filter((l) => /still waiting|acquired|vacuum|canceling|outbox worker/i.test(l)).slice(-30))
        t.diagnostic(`log: ${line}`);
    }
    assert.deepEqual(rows[0], { first_time: EVENTS, n: EVENTS }, 'every event delivered at the first attempt');
    assert.equal(Number(stats.failed_attempts), 0, 'no failed attempt at the healthy endpoint');
    for (const id of beside.ids) {
      const got = sink.byId(id);
      assert.equal(got.length, 1, `event ${id} arrived ${got.length} times`);
      assert.equal(got[0].verified, true, 'signed');
    }
    assert.ok(unblocked,
              `commit-to-2xx p99 beside the hostile set ${fmt(beside.p99)} ms, alone ${fmt(alone.p99)} ms`);
  });

  test('the worker\'s private memory grows by at most 64 MiB and comes back down', { skip: sanitized }, async (t) => {
    assert.ok(run.memory, 'the hostile phase ran');
    const { first, peak } = run.memory;
    // With the peers still listening (and streaming, where they do): what
    // the worker held for them must go once their deliveries are over.
    let now = privateKiB(workers[0]);
    try {
      await waitFor(() => (now = privateKiB(workers[0])) !== null && now - first <= 16 * MiB,
                    { timeout: 20000, interval: 250, message: 'private memory back within 16 MiB of the start' });
    } finally {
      t.diagnostic(`worker private memory: ${Math.round(first / MiB)} MiB before, peak ${Math.round(peak / MiB)} MiB ` +
                   `(+${Math.round((peak - first) / MiB)} MiB), after ${now === null ? 'gone' : Math.round(now / MiB)} MiB ` +
                   `(+${now === null ? '?' : Math.round((now - first) / MiB)} MiB)`);
    }
    assert.ok(peak - first <= 64 * MiB, `peak growth ${Math.round((peak - first) / MiB)} MiB`);
  });
});
