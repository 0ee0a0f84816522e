// 4. Claim cost vs backlog: the worker's own claim (outbox.claim(), which
// runs the statements the worker prepares in src/pg/queue_claim.cpp), run
// in BEGIN ... ROLLBACK over and over by pgbench, with 1,000 and with a large
// number of pending deliveries, unkeyed and keyed (10,000 keys). The database
// is claimdb, which no worker serves; its deliveries are made by the real
// enqueue() and dispatch(), in the batches the worker uses.
import fs from 'node:fs';
import path from 'node:path';
import { env, scale, PAYLOAD } from './lib/env.mjs';
import { connect, dispatchAll, resetQueue } from './lib/pg.mjs';
import { pgbench } from './lib/pgbench.mjs';

const KEYS = 10_000;
// What the worker asks for behind its keyed heads: outbox.batch_size (100)
// times kPipelineBatches (src/pg/worker.cpp).
const FOLLOWERS = 1000;

export function claimSql() {
  return 'SELECT * FROM outbox.claim($1, $2, $3, $4)';
}

function claimScript(dir) {
  const sql = claimSql()
    .replaceAll('$1', 'CAST(:ep AS int4)')
    .replaceAll('$2', 'CAST(:lim AS int4)')
    .replaceAll('$3', 'CAST(:lease AS int8)')
    .replaceAll('$4', 'CAST(:followers AS int4)');
  if (/\$\d/.test(sql)) throw new Error(`claim statement has parameters this bench does not set: ${sql}`);
  const file = path.join(dir, 'claim.sql');
  fs.writeFileSync(file, `\\set ep 0\n\\set lim 100\n\\set lease 60000\n\\set followers ${FOLLOWERS}\nBEGIN;\n${sql};\nROLLBACK;\n`);
  return file;
}

async function build(client, n, keyed) {
  await resetQueue(client);
  await client.query(
    `SELECT count(outbox.enqueue('bench.claim', $1::jsonb, key => CASE WHEN $3 THEN 'k' || (g % ${KEYS}) END))
     FROM generate_series(1, $2::int) AS g`, [PAYLOAD, n, keyed]);
  await dispatchAll(client);
  await client.query('VACUUM ANALYZE outbox.events, outbox.deliveries');
  const { rows } = await client.query(
    "SELECT count(*)::int AS n FROM outbox.deliveries WHERE state = 'pending'");
  if (rows[0].n !== n) throw new Error(`claim setup made ${rows[0].n} deliveries, wanted ${n}`);
}

async function rowsClaimed(client) {
  const sql = claimSql();
  await client.query('BEGIN');
  try {
    const { rowCount } = await client.query(sql, [0, 100, 60000, FOLLOWERS]);
    return rowCount;
  } finally {
    await client.query('ROLLBACK');
  }
}

async function time(client, script) {
  const rows = await rowsClaimed(client);
  // A short warm-up, then the measured run.
  await pgbench({ script, database: 'claimdb', transactions: 5 });
  const r = await pgbench({ script, database: 'claimdb', seconds: scale.claimSeconds, perStatement: true });
  const claim = r.statements.find((s) => !/^(BEGIN|ROLLBACK)\b|^\\/i.test(s.sql));
  await client.query('VACUUM outbox.deliveries');
  return { ms: claim ? claim.ms : r.latencyMs, iterations: r.processed, rows };
}

export async function measureClaimCost(log) {
  const client = await connect('claimdb');
  const script = claimScript(env.tmp);
  const sizes = [1000, scale.claimPending];
  const out = { sizes, cases: {} };
  try {
    for (const keyed of [false, true]) {
      const name = keyed ? 'keyed' : 'unkeyed';
      out.cases[name] = {};
      if (keyed) out.cases.keyed_heads_in_flight = {};
      for (const n of sizes) {
        log(`claim cost: building ${n.toLocaleString('en-US')} pending deliveries (${keyed ? `${KEYS} keys` : 'no key'})`);
        await build(client, n, keyed);
        out.cases[name][n] = await time(client, script);
        log(`  ${name} @ ${n}: ${out.cases[name][n].ms} ms per claim of ${out.cases[name][n].rows} rows`);
        if (keyed) {
          // Every key's head claimed and in flight (what happens when fewer
          // keys are busy than the worker has request slots): nothing is
          // claimable, and the query has to look at every pending row.
          await client.query(`UPDATE outbox.deliveries AS d SET next_attempt_at = now() + interval '1 hour'
                              FROM (SELECT key, min(seq) AS seq FROM outbox.deliveries GROUP BY key) AS h
                              WHERE d.key = h.key AND d.seq = h.seq`);
          await client.query('VACUUM ANALYZE outbox.deliveries');
          out.cases.keyed_heads_in_flight[n] = await time(client, script);
          log(`  keyed, heads in flight @ ${n}: ${out.cases.keyed_heads_in_flight[n].ms} ms per claim of ` +
              `${out.cases.keyed_heads_in_flight[n].rows} rows`);
        }
      }
    }
    await resetQueue(client);
  } finally {
    await client.end();
  }
  // Per row claimed when both claims returned rows: behind 10,000 keys a
  // large backlog has followers to bring (key pipelines), a small one none,
  // and a claim of 1,000 rows is not comparable with one of 100.
  for (const c of Object.values(out.cases)) {
    const [a, b] = [c[sizes[0]], c[sizes[1]]];
    c.perRow = a.rows > 0 && b.rows > 0 && a.rows !== b.rows;
    c.ratio = c.perRow ? (b.ms / b.rows) / (a.ms / a.rows) : b.ms / a.ms;
  }
  return out;
}
