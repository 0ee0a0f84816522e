// Connections to the benchmark cluster (Unix socket in its scratch
// directory), and the few server-side controls the measurements use.
import pg from 'pg';
import { env } from './env.mjs';

export function connectionConfig(database = 'bench') {
  return { host: env.pghost, port: env.pgport, user: 'postgres', database };
}

export async function connect(database = 'bench') {
  const client = new pg.Client(connectionConfig(database));
  await client.connect();
  return client;
}

export function pool(database = 'bench', max = 8) {
  return new pg.Pool({ ...connectionConfig(database), max });
}

export async function one(client, sql, params) {
  const { rows } = await client.query(sql, params);
  return rows[0];
}

// ALTER SYSTEM + reload; returns the server's clock (epoch seconds) at the
// moment the reload was signalled.
export async function setSystem(client, settings) {
  for (const [name, value] of Object.entries(settings)) {
    if (value === null) await client.query(`ALTER SYSTEM RESET ${name}`);
    else await client.query(`ALTER SYSTEM SET ${name} = '${String(value).replaceAll("'", "''")}'`);
  }
  const row = await one(client, 'SELECT extract(epoch FROM clock_timestamp())::float8 AS t, pg_reload_conf()');
  return row.t;
}

// The pids of the delivery workers (not the launcher).
export async function workerPids(client) {
  // A worker may be restarting; look for a while.
  for (let i = 0; i < 100; i++) {
    const { rows } = await client.query(
      "SELECT pid FROM pg_stat_activity WHERE backend_type = 'outbox worker' ORDER BY pid");
    if (rows.length > 0) return rows.map((r) => r.pid);
    await sleep(100);
  }
  throw new Error('no outbox worker in pg_stat_activity after 10 s');
}

// Heap (with TOAST, FSM, VM) and index bytes of the extension's tables.
export async function tableSizes(client) {
  const { rows } = await client.query(`
    SELECT c.relname AS name, pg_table_size(c.oid)::int8 AS heap, pg_indexes_size(c.oid)::int8 AS indexes
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'outbox' AND c.relname IN ('events', 'deliveries') ORDER BY 1`);
  const out = {};
  for (const r of rows) out[r.name] = { heap: Number(r.heap), indexes: Number(r.indexes) };
  return out;
}

// Empties the queue (and resets dispatch's progress) between measurements.
// A (paused) worker may be dispatching or pruning just then, and TRUNCATE
// can lose a deadlock against it: tried again a few times.
export async function resetQueue(client) {
  for (let attempt = 1; ; attempt++) {
    try {
      await client.query('TRUNCATE outbox.events, outbox.deliveries');
      break;
    } catch (err) {
      if (err.code !== '40P01' || attempt >= 5) throw err;
      await sleep(200);
    }
  }
  await client.query(`UPDATE outbox.dispatch_state
                      SET done_snapshot = NULL, target_snapshot = NULL, cursor_txid = NULL, cursor_seq = NULL`);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Turns every committed event into deliveries now, as the worker would:
// dispatch() in the worker's batch size (10 × outbox.batch_size), each batch
// its own transaction.
export async function dispatchAll(client) {
  await client.query(`DO $$
    BEGIN
      FOR i IN 1..100000 LOOP
        EXIT WHEN outbox.dispatch(1000) < 1000;
        COMMIT;
      END LOOP;
    END $$`);
}
