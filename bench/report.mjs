// The table: one row per figure, with the issue's target next to it and
// PASS / MISS (or "info" where the issue sets no target, "derived" where the
// target follows from one of the issue's). Also the rows of latest.json.

const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : String(x));
const fix = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const mib = (bytes) => `${fix(bytes / 1048576, 1)} MiB`;
const verdict = (ok) => (ok === null || ok === undefined ? 'info' : ok ? 'PASS' : 'MISS');

function sizeTotal(sizes) {
  if (!sizes) return NaN;
  return Object.values(sizes).reduce((sum, t) => sum + t.heap + t.indexes, 0);
}

function sizeText(sizes) {
  if (!sizes) return '?';
  return Object.entries(sizes).map(([name, t]) => `${name} ${mib(t.heap)}+${mib(t.indexes)}`).join(', ');
}

export function buildRows(r) {
  const rows = [];
  const add = (section, name, value, target, pass, detail) =>
    rows.push({ section, name, value, target: target ?? '', result: verdict(pass), pass: pass ?? null, detail: detail ?? '' });
  const failed = (section, name, key) => {
    if (r.errors?.[key]) { add(section, name, `ERROR: ${r.errors[key]}`, '', false); return true; }
    return false;
  };

  if (!failed('0 sink', 'nginx 204 ceiling (wrk, 64 connections)', 'sink') && r.sink) {
    add('0 sink', 'nginx 204 ceiling (wrk, 64 connections)', `${int(r.sink.requestsPerSecond)} req/s`);
  }

  if (!failed('1 enqueue', 'enqueue overhead', 'enqueue') && r.enqueue) {
    for (const c of [16, 1]) {
      const e = r.enqueue[c];
      if (!e) continue;
      add('1 enqueue', `enqueue() vs hand-made outbox, ${c} client${c > 1 ? 's' : ''}`,
          `${fix(e.ratio)}× (${int(e.median.outbox)} vs ${int(e.median.plain)} tps)`, '≥ 0.95×', e.ratio >= 0.95,
          `median of ${e.ratios.length} per-round ratios, which ranged ${fix(Math.min(...e.ratios))}–` +
          `${fix(Math.max(...e.ratios))}×; median tps outbox ${int(e.median.outbox)}, hand-made ${int(e.median.plain)}`);
      if (e.mixed) {
        add('1 enqueue', `  the same, both mixed in one pgbench run, ${c} client${c > 1 ? 's' : ''}`,
            `${fix(e.mixed.ratio)}× (${fix(e.mixed.outboxMs, 3)} vs ${fix(e.mixed.plainMs, 3)} ms per transaction)`,
            'cross-check', null, 'hand-made latency / enqueue() latency, each transaction picked at random');
      }
    }
    for (const c of [16, 1]) {
      const e = r.enqueue[c];
      if (!e?.pgqRatio) continue;
      add('1 enqueue', `enqueue() vs PgQ's pgq.insert_event, ${c} client${c > 1 ? 's' : ''}`,
          `${fix(e.pgqRatio)}× (${int(e.median.outbox)} vs ${int(e.median.pgq)} tps)`, 'anchor', null,
          `median of ${e.pgqRatios.length} per-round ratios, which ranged ${fix(Math.min(...e.pgqRatios))}–${fix(Math.max(...e.pgqRatios))}×`);
    }
    if (r.enqueue.pgqAvailable === false) add('1 enqueue', "enqueue() vs PgQ's pgq.insert_event", 'skipped: no pgq extension in this server', 'anchor');
    for (const c of [16, 1]) {
      const e = r.enqueue[c];
      if (!e) continue;
      add('1 enqueue', `enqueue() + notify_on_enqueue vs hand-made, ${c} client${c > 1 ? 's' : ''}`,
          `${fix(e.notifyRatio)}× (${int(e.median.notify)} tps)`, 'what NOTIFY costs', null,
          r.enqueue.notifyVerified ? 'NOTIFY verified' : 'NOTIFY NOT observed');
    }
  }

  if (!failed('2 drain', 'drain', 'drain') && r.drain) {
    const d = r.drain;
    add('2 drain', `drain ${int(d.events)} events to nginx`,
        `${int(d.eventsPerSecond)} events/s (${fix(d.seconds, 1)} s; 10–90 %: ${int(d.sustainedPerSecond)}/s)`,
        '≥ 25,000/s', d.done && d.eventsPerSecond >= 25000,
        `${int(d.delivered)} delivered, ${d.dead} dead, ${d.pending} pending, ${int(d.httpRequests)} requests`);
    if (r.sink) {
      add('2 drain', 'drain rate / nginx ceiling', `${fix(d.eventsPerSecond / r.sink.requestsPerSecond, 3)}×`);
    }
  }
  if (!failed('2 drain', 'mix drain', 'mix') && r.mix) {
    const m = r.mix;
    add('2 drain', `drain the mix: ${int(m.keyed)} events with distinct keys + ${int(m.unkeyed)} unkeyed, right after enqueueing`,
        `${int(m.eventsPerSecond)} events/s (${fix(m.seconds, 1)} s; 10–90 %: ${int(m.sustainedPerSecond)}/s)`,
        '≥ 25,000/s', m.done && m.eventsPerSecond >= 25000,
        `${int(m.delivered)} delivered, ${m.dead} dead, ${m.pending} pending, ${int(m.httpRequests)} requests`);
  }
  if (!failed('2 drain', 'keyed drains', 'keyed') && r.keyed) {
    const targets = { 1: 10000, 10000: 20000 };
    for (const k of r.keyed.rounds) {
      const target = targets[k.keys];
      add('2 drain', `drain ${int(k.events)} events over ${int(k.keys)} key${k.keys > 1 ? 's' : ''}`,
          `${int(k.perSecond)} events/s (${fix(k.seconds, 1)} s)`, target ? `≥ ${int(target)}/s, in key order` : 'in key order',
          k.done && k.inversions === 0 && (target ? k.perSecond >= target : true),
          `${int(k.delivered)} delivered, ${int(k.httpRequests)} requests, ${k.inversions} finished out of key order`);
    }
  }
  if (!failed('2 drain', 'TLS', 'tls') && r.tls) {
    const t = r.tls;
    add('2 drain', `drain ${int(t.events)} events over HTTPS / over HTTP (same nginx, keep-alive)`,
        `${fix(t.ratio)}× (${int(t.httpsPerSecond)} vs ${int(t.httpPerSecond)} events/s)`, '≥ 0.85×',
        t.done && t.ratio >= 0.85,
        `median of ${t.ratios.length} pairs (${t.ratios.map((x) => fix(x)).join(', ')}); ` +
        `${int(t.handshakes)} TLS handshakes (connections nginx accepted) for ${int(t.events)} events`);
  }
  if (!failed('2 drain', 'brokers', 'brokers') && r.brokers) {
    const b = r.brokers;
    const names = { nats: 'NATS JetStream', rabbitmq: 'RabbitMQ (confirms, persistent)', redis: 'Redis Streams',
                    kafka: 'Kafka (librdkafka mock cluster, 3 brokers, acks=all, idempotent)' };
    for (const [key, label] of Object.entries(names)) {
      const x = b[key];
      if (!x) continue; // kafka: a library without it
      add('2 drain', `drain ${int(b.events)} events into ${label} / over HTTP`,
          `${fix(x.ratio)}× (${int(x.perSecond)} vs ${int(b.http.perSecond)} events/s)`, 'comparison', null,
          `${int(x.delivered)} delivered, ${int(x.dead)} dead in ${fix(x.seconds, 1)} s; broker on the same machine`);
    }
  }
  if (!failed('2 drain', 'pg_net', 'pgNet') && r.pgNet) {
    const p = r.pgNet;
    if (p.skipped) {
      add('2 drain', '20,000 webhooks to nginx, outbox / pg_net', 'skipped', 'comparison', null, p.skipped);
    } else {
      add('2 drain', `${int(p.events)} webhooks to nginx, outbox / pg_net ${p.version}`,
          `${fix(p.ratio, 1)}× (${int(p.outbox.perSecond)} vs ${int(p.pgNet.perSecond)} requests/s)`, 'comparison', null,
          `from the first commit to the last answer: outbox ${fix(p.outbox.seconds, 1)} s, pg_net ` +
          `${fix(p.pgNet.seconds, 1)} s (${p.pgNet.done ? 'all answered' : `${int(p.pgNet.answered)} answered`}` +
          `, ${int(p.pgNetFailed)} responses not 204)`);
    }
  }
  if (!failed('2 drain', 'polling relay drain', 'pollingDrain') && r.pollingDrain) {
    const p = r.pollingDrain;
    add('2 drain', `polling relay drain ${int(p.events)} rows (1 s poll, batch 100)`,
        `${int(p.eventsPerSecond)} events/s (${fix(p.seconds, 1)} s)`, 'comparison', null);
    if (r.drain) add('2 drain', 'outbox drain / polling relay drain', `${fix(r.drain.eventsPerSecond / p.eventsPerSecond)}×`);
  }
  if (!failed('2 drain', 'load', 'load') && r.load) {
    const l = r.load;
    const bound = Math.max(1000, l.producerTps);
    add('2 drain', `${l.clients} clients enqueueing ${l.seconds} s while delivering: max backlog`,
        `${int(l.maxBacklog)} events (producers ${int(l.producerTps)} tps, delivered ${int(l.deliveredPerSecondDuringLoad)}/s)`,
        'bounded: backlog at load end ≤ 1 s of production', l.backlogAtLoadEnd <= bound,
        `backlog at load end ${int(l.backlogAtLoadEnd)}; ` +
        (l.caughtUp ? `caught up ${fix(l.catchUpSeconds, 1)} s after` : 'did not catch up before the deadline'));
  }

  if (!failed('3 latency', 'latency', 'latency') && r.latency) {
    const i = r.latency.idle;
    if (i) {
      add('3 latency', `idle: CPU of the launcher and the ${i.processes - 1} workers with nothing to do`,
          `${int(i.cpuMs)} ms in ${i.seconds} s (${fix(i.coreShare * 100, 3)} % of a core)`, '≤ 0.5 % of a core',
          i.coreShare <= 0.005, 'utime + stime from /proc');
    }
    // Issue 23's targets: p50 ≤ 1.5 ms at the low rate; p50 ≤ 2 ms and p99 ≤
    // 10 ms at 1,000/s; worker CPU per event ≤ 0.3 ms at 100/s, ≤ 0.15 ms
    // at 1,000/s.
    const latencyTarget = { low: ['p50 ≤ 1.5 ms', (s) => s.p50 <= 1.5], moderate: ['info', null],
                            high: ['p50 ≤ 2 ms, p99 ≤ 10 ms', (s) => s.p50 <= 2 && s.p99 <= 10] };
    const cpuTarget = { moderate: 0.3, high: 0.15 };
    for (const s of r.latency.scenarios) {
      const rate = s.rate === 'low' ? `1 per ${r.latency.lowIntervalMs} ms`
        : s.rate === 'moderate' ? `${r.latency.moderateRate}/s` : `${r.latency.highRate}/s`;
      const value = `p50 ${fix(s.p50)} / p90 ${fix(s.p90)} / p99 ${fix(s.p99)} / max ${fix(s.max, 1)} ms`;
      const detail = `${int(s.sent)} sent at ${int(s.achievedPerSecond)}/s, ${s.missing} missing, ` +
                     `${s.duplicates} duplicates, ${s.badSignatures} bad signatures`;
      if (s.system === 'outbox') {
        const [target, meets] = latencyTarget[s.rate];
        add('3 latency', `commit→receipt, outbox, ${rate}${s.afterDrain ? ', right after a drain' : ''}`, value,
            target, meets ? s.missing === 0 && meets(s) : null, detail);
        if (s.workerCpuMsPerEvent !== undefined) {
          const limit = cpuTarget[s.rate];
          add('3 latency', `  worker CPU per event, all workers, ${rate}${s.afterDrain ? ', after the drain' : ''}`,
              `${fix(s.workerCpuMsPerEvent, 3)} ms`, `≤ ${limit} ms`, s.workerCpuMsPerEvent <= limit,
              'utime + stime of the workers from /proc, over the run, per event received');
        }
      } else {
        add('3 latency', `commit→receipt, polling relay, ${rate}`, value, 'comparison', null, detail);
      }
    }
    for (const rate of ['low', 'high']) {
      const o = r.latency.scenarios.find((s) => s.system === 'outbox' && s.rate === rate);
      const p = r.latency.scenarios.find((s) => s.system === 'polling' && s.rate === rate);
      if (o && p) add('3 latency', `polling relay p50 / outbox p50, ${rate} rate`, `${fix(p.p50 / o.p50, 0)}×`);
    }
  }

  if (!failed('4 claim', 'claim cost', 'claim') && r.claim) {
    const [small, big] = r.claim.sizes;
    const names = { unkeyed: 'unkeyed', keyed: 'keyed, 10,000 keys',
                    keyed_heads_in_flight: 'keyed, every key\'s head in flight' };
    for (const [key, label] of Object.entries(names)) {
      const c = r.claim.cases[key];
      if (!c) continue;
      const extra = key === 'keyed_heads_in_flight';
      add('4 claim', `claim batch, ${label}: ${int(small)} vs ${int(big)} pending`,
          `${fix(c.ratio)}×${c.perRow ? ' per row' : ''} (${fix(c[small].ms, 3)} vs ${fix(c[big].ms, 3)} ms; ` +
          `${c[small].rows}/${c[big].rows} rows)`,
          extra ? '≤ 2× (derived: DESIGN.md)' : '≤ 2×', c.ratio <= 2,
          `${c[small].iterations}/${c[big].iterations} iterations`);
    }
  }

  if (r.drain || r.load || r.fanout) {
    const maxOf = (k) => Math.max(r.drain?.rssMaxKiB?.[k] ?? 0, r.load?.rssMaxKiB?.[k] ?? 0,
                                  r.fanout?.rssMaxKiB?.[k] ?? 0);
    const anon = maxOf('rssAnon') / 1024;
    const vm = maxOf('vmRss') / 1024;
    add('5 memory', 'worker memory, largest worker, max during drain, fan-out and load', `VmRSS ${fix(vm, 1)} MiB (private ${fix(anon, 1)} MiB)`,
        '≤ 64 MiB (private: VmRSS counts shared_buffers pages touched)', anon > 0 ? anon <= 64 : false,
        `shared ${fix(maxOf('rssShmem') / 1024, 1)} MiB`);
  }
  if (r.drain?.sizes) {
    const s = r.drain.sizes;
    add('5 bloat', 'events, deliveries (heap+indexes) at start', sizeText(s.start));
    add('5 bloat', 'with the backlog', sizeText(s.backlog));
    add('5 bloat', 'after the drain', sizeText(s.drained));
  }
  if (!failed('5 bloat', 'pruning', 'prune') && r.prune) {
    const p = r.prune;
    const start = sizeTotal(r.drain?.sizes?.start);
    const after = sizeTotal(p.sizes);
    add('5 bloat', 'after pruning (retention 1s), truncation and VACUUM', sizeText(p.sizes),
        'near the start (≤ start + 1 MiB)', after <= start + 1048576,
        `total ${mib(after)} vs ${mib(start)} at start, peak ${mib(sizeTotal(r.drain?.sizes?.drained))}`);
    add('5 bloat', 'worker pruning rate', `${int(p.rowsPerSecond)} deliveries/s (${int(p.pruned)} in ${fix(p.seconds, 1)} s${p.complete ? '' : ', INCOMPLETE'})`,
        r.drain ? `≥ drain rate ${int(r.drain.eventsPerSecond)}/s (derived: else tables grow)` : '',
        r.drain ? p.rowsPerSecond >= r.drain.eventsPerSecond : null);
  }

  if (!failed('6 fan-out', 'fan-out', 'fanout') && r.fanout) {
    const f = r.fanout;
    add('6 fan-out', `fan-out: ${int(f.events)} events × ${f.endpoints} endpoints`,
        `${int(f.perSecond)} deliveries/s (${fix(f.seconds, 1)} s)`, '', null,
        `${int(f.delivered)} delivered, ${f.dead} dead, ${f.pending} pending`);
    if (r.drain) {
      const ratio = f.perSecond / r.drain.eventsPerSecond;
      add('6 fan-out', 'fan-out deliveries/s / single-endpoint rate', `${fix(ratio)}×`, '≥ 0.8×', f.done && ratio >= 0.8);
    }
  } else if (!r.errors?.fanout) {
    add('6 fan-out', 'fan-out: not measured in this run', 'TODO', '≥ 0.8× single-endpoint rate', null);
  }

  if (!failed('7 micro', 'micro-benchmarks', 'micro') && r.micro) {
    for (const [name, m] of Object.entries(r.micro)) {
      add('7 micro', name, `${int(m.opsPerSecond)} ops/s (${fix(m.nsPerOp, 0)} ns/op)`);
    }
  }

  if (!failed('8 stats', 'reading outbox.stats', 'stats') && r.stats) {
    // Issue 13 sets no number: the figures are info, unless a read takes
    // more than a second, which would be alarming for a monitoring view.
    const alarmMs = 1000;
    for (const n of r.stats.sizes) {
      const c = r.stats.cases[n];
      if (!c) continue;
      for (const [key, label] of [['fresh', 'fresh backlog'], ['vacuumed', 'after VACUUM ANALYZE'],
                                  ['noJit', 'after VACUUM ANALYZE, jit = off']]) {
        const s = c[key];
        if (!s) continue;
        const scans = s.plan.scans.map((x) => `${x.type}${x.index ? ` ${x.index}` : ''}` +
                                               (x.heapFetches === null ? '' : `, ${int(x.heapFetches)} heap fetches`));
        add('8 stats', `SELECT * FROM outbox.stats, ${int(n)} pending, ${label}`,
            `median ${fix(s.medianMs)} / max ${fix(s.maxMs)} ms (first read ${fix(s.firstMs)} ms)`,
            `reading stays cheap (alarming: > ${alarmMs / 1000} s)`, s.maxMs > alarmMs ? false : null,
            `${r.stats.reads} warm reads; EXPLAIN ANALYZE ${fix(s.plan.executionMs)} ms, of which JIT ` +
            `${fix(s.plan.jitMs)} ms: ${scans.join('; ')}; ` +
            `${int(s.plan.sharedHit)} buffers hit, ${int(s.plan.sharedRead)} read`);
      }
    }
  }

  if (!failed('9 attempts', 'log_attempts = all vs none', 'attempts') && r.attempts) {
    const a = r.attempts;
    add('9 attempts', `drain ${int(a.events)} events, log_attempts = all vs none`,
        `${fix(a.ratio)}× (${int(a.all.medianPerSecond)} vs ${int(a.none.medianPerSecond)} events/s)`,
        '≥ 0.8×', a.all.done && a.none.done && a.ratio >= 0.8,
        `median of ${a.ratios.length} per-pair ratios (order alternating), which ranged ` +
        `${fix(Math.min(...a.ratios))}–${fix(Math.max(...a.ratios))}×; medians of ${a.pairs} drains each`);
    const ok = a.all.attemptRows.every((x) => x === a.events) && a.none.attemptRows.every((x) => x === 0);
    add('9 attempts', 'rows in outbox.attempts after each drain',
        `all: ${a.all.attemptRows.map(int).join(', ')} (${mib(a.all.attemptBytes)}); ` +
        `none: ${a.none.attemptRows.map(int).join(', ')}`,
        'all: one per attempt; none: 0 (derived)', ok);
  }
  if (!failed('17 callbacks', 'a trivial callback on every delivery vs none', 'callbacks') && r.callbacks) {
    const c = r.callbacks;
    add('17 callbacks', `drain ${int(c.events)} events, a trivial callback on every delivery vs none`,
        `${fix(c.ratio)}× (${int(c.with.medianPerSecond)} vs ${int(c.without.medianPerSecond)} events/s)`,
        '≥ 0.8×', c.with.done && c.without.done && c.calls.every((x) => x === c.events) && c.ratio >= 0.8,
        `median of ${c.ratios.length} per-pair ratios (order alternating), which ranged ` +
        `${fix(Math.min(...c.ratios))}–${fix(Math.max(...c.ratios))}×; calls counted: ${c.calls.map(int).join(', ')}`);
  }
  if (!failed('10 limited', 'a limited endpoint next to a fast one', 'limited') && r.limited) {
    const l = r.limited;
    const limits = `rate_limit ${l.rateLimit}/s, max_in_flight ${l.maxInFlight}`;
    add('10 limited', `fast endpoint, ${int(l.events)} events: with a limited one (${limits}) vs alone`,
        `${fix(l.ratio)}× (${int(l.limited.medianFastPerSecond)} vs ${int(l.alone.medianFastPerSecond)} deliveries/s)`,
        '≥ 0.90×', l.alone.done && l.limited.done && l.ratio >= 0.9,
        `median of ${l.ratios.length} per-pair ratios (order alternating), which ranged ` +
        `${fix(Math.min(...l.ratios))}–${fix(Math.max(...l.ratios))}×; counted: the fast endpoint's deliveries only`);
    const expected = l.rateLimit * l.limited.medianSeconds;
    add('10 limited', 'limited endpoint: delivered while the fast one drained',
        `${l.limited.limitedDelivered.map(int).join(', ')} (median ${fix(l.limited.medianLimitedPerSecond, 1)}/s)`,
        `≈ ${l.rateLimit}/s × seconds (derived: ≈ ${int(expected)}), never more`,
        l.limited.medianLimitedPerSecond <= l.rateLimit * 1.05 + 2 / Math.max(l.limited.medianSeconds, 1),
        l.rounds.filter((x) => x.variant === 'limited').map((x) =>
          `${int(x.limitedPending)} pending (${int(x.limitedPendingTried)} of them tried), ${x.limitedDead} dead`).join('; '));
    add('10 limited', 'worker CPU per delivered request, alone / with the limited endpoint',
        `${fix(l.alone.medianCpuUsPerDelivery, 0)} / ${fix(l.limited.medianCpuUsPerDelivery, 0)} µs`, '', null,
        `updates of outbox.deliveries per delivered request: ${fix(l.alone.medianUpdatesPerDelivery)} / ` +
        `${fix(l.limited.medianUpdatesPerDelivery)} (pg_stat_user_tables, as far as the workers have reported)`);
    if (l.predispatched) {
      const p = l.predispatched;
      add('10 limited', '  the same, deliveries dispatched before the unpause (1 pair; no dispatch timed)',
          `${fix(p.ratio)}× (${int(p.limited.fastPerSecond)} vs ${int(p.alone.fastPerSecond)} deliveries/s)`,
          'diagnosis: limit alone vs fan-out dispatch', null,
          `worker CPU ${fix(p.alone.workerCpuUsPerDelivery, 0)} / ${fix(p.limited.workerCpuUsPerDelivery, 0)} µs per request; ` +
          `transactions ${int(p.alone.transactions)} / ${int(p.limited.transactions)}; limited delivered ${int(p.limited.limitedDelivered)}`);
    }
  }
  if (!failed('15 databases', 'one database draining beside nine idle', 'databases') && r.databases) {
    const d = r.databases;
    add('15 databases', `drain ${int(d.events)} events in one database, nine others served and idle, vs alone`,
        `${fix(d.ratio)}× (${int(d.besidePerSecond)} vs ${int(d.alonePerSecond)} events/s)`, '≥ 0.90×',
        d.done && d.ratio >= 0.9,
        `median of ${d.ratios.length} per-pair ratios (order alternating), which ranged ` +
        `${fix(Math.min(...d.ratios))}–${fix(Math.max(...d.ratios))}×; alone: the nine with ALLOW_CONNECTIONS false`);
    const i = d.idle;
    add('15 databases', `ten databases served and idle: CPU of their ${i.processes - 1} workers and the launcher`,
        `${int(i.cpuMs)} ms in ${i.seconds} s (${fix(i.coreShare * 100, 3)} % of a core)`, '≈ 0 (≤ 0.5 % of a core)',
        i.coreShare <= 0.005, 'utime + stime from /proc, after 30 s idle');
  }
  if (!failed('16 hostile', 'hostile peers', 'hostile') && r.hostile) {
    const h = r.hostile;
    const ms = (x) => `p50 ${fix(x.p50, 1)} / p99 ${fix(x.p99, 1)} ms`;
    add('16 hostile', `healthy endpoint alone, commit→2xx (${int(h.events)} events, one per ${h.intervalMs} ms)`,
        ms(h.alone), 'reference', null, `${h.alone.missing} missing, ${h.alone.failedAttempts} failed attempts`);
    add('16 hostile', `healthy endpoint beside ${h.peers} hostile endpoints`,
        `${ms(h.beside)}, ${h.beside.failedAttempts} failed attempts`, 'p99 < 100 ms, no failed attempt (issue 22)',
        h.beside.missing === 0 && h.beside.p99 < 100 && h.beside.failedAttempts === 0,
        `${h.beside.missing} missing; every hostile delivery finished ${fix(h.hostileSeconds, 1)} s after the first`);
    const m = h.beside.memory;
    add('16 hostile', 'worker private memory beside them: before / peak / after',
        `${fix(m.before / 1024, 1)} / ${fix(m.peak / 1024, 1)} / ${fix(m.after / 1024, 1)} MiB`,
        'peak ≤ before + 64 MiB, after ≤ before + 16 MiB', m.peak - m.before <= 65536 && m.after - m.before <= 16384,
        `the worker that grew most (pid ${m.pid}); alone it went from ${fix(h.alone.memory.before / 1024, 1)} to ` +
        `${fix(h.alone.memory.peak / 1024, 1)} MiB`);
    const x = h.hostile;
    add('16 hostile', 'hostile deliveries: failed with a reason / all', `${int(x.failed_with_reason)} / ${int(x.total)}`,
        'all, none delivered, no redirect followed, no worker restart',
        x.failed_with_reason === x.total && h.trap === 0 && !h.workerRestarts,
        `${x.delivered} delivered, ${x.pending} pending; ${h.trap} requests reached the redirect target; ` +
        `workers ${h.workerRestarts ? 'RESTARTED' : 'the same'}`);
  }
  return rows;
}

export function printTable(rows, write = (s) => process.stdout.write(s)) {
  const cols = [
    ['measurement', (r) => r.name],
    ['figure', (r) => r.value],
    ['target', (r) => r.target],
    ['result', (r) => r.result],
  ];
  const widths = cols.map(([h, f]) => Math.max(h.length, ...rows.map((r) => String(f(r)).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ').trimEnd() + '\n';
  write(line(cols.map(([h]) => h)));
  write(widths.map((w) => '-'.repeat(w)).join('-|-') + '\n');
  let section = null;
  for (const r of rows) {
    if (section !== null && r.section !== section) write('\n');
    section = r.section;
    write(line(cols.map(([, f]) => f(r))));
    if (r.detail) write(line(['', `  ${r.detail}`, '', '']));
  }
}
