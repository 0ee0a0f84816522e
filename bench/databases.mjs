// 15. Many databases (issue 24): ten databases with the extension on the
// bench server, served as the default serves them (outbox.database = '',
// after a restart; max_worker_processes raised so that each gets its two
// workers). The bench and claimdb databases are paused for the time
// (ALTER DATABASE ... SET outbox.paused = on).
//
// - One database draining while nine others are served and idle, against
//   the same database draining alone (the nine with ALLOW_CONNECTIONS false:
//   the launcher stops their workers), in pairs whose order alternates;
//   rate = deliveries / (last finished_at − unpause), as in row 2.
// - The CPU (utime + stime from /proc) of the ten databases' workers and
//   the launcher over a minute, the ten served and idle.
//
// Everything is put back at the end (settings reset, a restart, the ten
// databases dropped).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { env, scale } from './lib/env.mjs';
import { connect, resetQueue, setSystem, sleep } from './lib/pg.mjs';
import { cpuTicks, run } from './lib/proc.mjs';
import { median } from './lib/stats.mjs';
import { enqueueBacklog, unpauseAndDrain } from './drain.mjs';

const DATABASES = Array.from({ length: 10 }, (_, i) => `mdb${i}`);
const IDLE_SETTLE_S = 30;  // an idle database's polls space out within ~20 s
const IDLE_MEASURE_S = 60;
const clkTck = 100;

async function restart() {
  const bindir = execFileSync('pg_config', ['--bindir']).toString().trim();
  const args = ['-D', env.pgdata, '-l', path.join(env.pghost, 'postgres.log'), '-m', 'fast', '-w', '-t', '120', 'restart'];
  if (process.getuid() === 0) await run('runuser', ['-u', 'postgres', '--', path.join(bindir, 'pg_ctl'), ...args]);
  else await run(path.join(bindir, 'pg_ctl'), args);
}

// { database: workers } of the outbox workers running now.
async function workers(client) {
  const { rows } = await client.query(
    "SELECT datname, count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'outbox worker' GROUP BY 1");
  return Object.fromEntries(rows.map((r) => [r.datname, r.n]));
}

async function waitUntil(what, condition, timeoutS = 60) {
  const deadline = Date.now() + timeoutS * 1000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

// The nine idle ones served (their workers running) or not (none).
async function serveOthers(admin, served) {
  for (const db of DATABASES.slice(1)) {
    await admin.query(`ALTER DATABASE ${db} ALLOW_CONNECTIONS ${served}`);
  }
  await waitUntil(`the nine ${served ? 'served' : 'left'}`, async () => {
    const w = await workers(admin);
    return DATABASES.slice(1).every((db) => (served ? w[db] === 2 : !w[db]));
  });
}

async function drainOnce(admin, n, variant, log) {
  const client = await connect(DATABASES[0]);
  try {
    await setSystem(admin, { 'outbox.paused': 'on' });
    await resetQueue(client);
    await client.query('VACUUM outbox.events, outbox.deliveries');
    await serveOthers(admin, variant === 'beside nine idle');
    await enqueueBacklog(client, n, 'bench.databases');
    await client.query('CHECKPOINT');
    const out = await unpauseAndDrain(client, n, log, `databases, ${variant}`);
    return { variant, ...out };
  } finally {
    await setSystem(admin, { 'outbox.paused': 'on' });
    await client.end();
  }
}

async function idleCpu(admin, log) {
  await serveOthers(admin, true);
  await setSystem(admin, { 'outbox.paused': 'off' });
  log(`databases: ten served and idle; settling ${IDLE_SETTLE_S} s, then ${IDLE_MEASURE_S} s measured`);
  await sleep(IDLE_SETTLE_S * 1000);
  const { rows } = await admin.query(
    `SELECT pid FROM pg_stat_activity
     WHERE backend_type = 'outbox launcher' OR (backend_type = 'outbox worker' AND datname = ANY($1))`, [DATABASES]);
  const pids = rows.map((r) => r.pid);
  const before = cpuTicks(pids);
  await sleep(IDLE_MEASURE_S * 1000);
  const after = cpuTicks(pids);
  await setSystem(admin, { 'outbox.paused': 'on' });
  const ticks = pids.reduce((sum, pid) => sum + (after[pid] - before[pid]), 0);
  const cpuMs = (ticks / clkTck) * 1000;
  return { processes: pids.length, seconds: IDLE_MEASURE_S, cpuMs, coreShare: cpuMs / (IDLE_MEASURE_S * 1000) };
}

export async function measureDatabases(log) {
  const n = scale.drainEvents;
  const pairs = { quick: 1, default: 2, full: 3 }[env.mode] ?? 2;
  let admin = await connect('postgres');
  try {
    for (const db of DATABASES) {
      await admin.query(`DROP DATABASE IF EXISTS ${db}`);
      await admin.query(`CREATE DATABASE ${db} TEMPLATE template0`);
      const c = await connect(db);
      await c.query('CREATE EXTENSION outbox');
      await c.end();
    }
    for (const db of ['bench', 'claimdb']) await admin.query(`ALTER DATABASE ${db} SET outbox.paused = on`);
    await admin.query("ALTER SYSTEM SET outbox.database = ''");
    await admin.query('ALTER SYSTEM SET max_worker_processes = 32');
    await admin.query('ALTER SYSTEM SET outbox.max_workers = 30');
    await admin.end();
    log('databases: restarting to serve every database with the extension');
    await restart();
    admin = await connect('postgres');
    await waitUntil('two workers in each of the ten', async () => {
      const w = await workers(admin);
      return DATABASES.every((db) => w[db] === 2);
    });

    const rounds = [];
    for (let p = 0; p < pairs; p++) {
      const order = p % 2 === 0 ? ['alone', 'beside nine idle'] : ['beside nine idle', 'alone'];
      for (const variant of order) rounds.push(await drainOnce(admin, n, variant, log));
    }
    const rate = (variant) => rounds.filter((r) => r.variant === variant).map((r) => r.perSecond);
    const ratios = [];
    for (let p = 0; p < pairs; p++) {
      const pair = rounds.slice(2 * p, 2 * p + 2);
      const alone = pair.find((r) => r.variant === 'alone');
      const beside = pair.find((r) => r.variant === 'beside nine idle');
      ratios.push(beside.perSecond / alone.perSecond);
    }
    const idle = await idleCpu(admin, log);
    log(`databases: ratio ${median(ratios).toFixed(2)}; idle: ${idle.cpuMs.toFixed(0)} ms CPU in ${idle.seconds} s`);
    return {
      events: n, pairs, ratios, ratio: median(ratios), done: rounds.every((r) => r.done),
      alonePerSecond: median(rate('alone')), besidePerSecond: median(rate('beside nine idle')),
      rounds: rounds.map(({ samples, rssSamples, ...rest }) => rest), idle,
    };
  } finally {
    // Put the server back as the other measurements expect it.
    try {
      for (const setting of ['outbox.database', 'max_worker_processes', 'outbox.max_workers']) {
        await admin.query(`ALTER SYSTEM RESET ${setting}`);
      }
      for (const db of ['bench', 'claimdb']) await admin.query(`ALTER DATABASE ${db} RESET outbox.paused`);
      await admin.end();
      await restart();
      admin = await connect('postgres');
      for (const db of DATABASES) await admin.query(`DROP DATABASE IF EXISTS ${db}`);
    } finally {
      await admin.end();
    }
  }
}
