// Several databases on one server, for the tests (and the bench) of
// serving many: a cluster that serves every database with the extension
// (outbox.database = '', the default), databases made with the extension
// and an endpoint of their own, and who runs where.
import { startCluster } from './cluster.mjs';
import { TEST_SECRET } from './sink.mjs';

// A cluster serving every database that has the extension; it makes no
// database of its own (the handle's default database is "postgres").
export async function startServingAll({ conf = {}, bindir } = {}) {
  return startCluster({
    ...(bindir ? { bindir } : {}),
    database: 'postgres',
    createDatabase: false,
    createExtension: false,
    conf: { 'outbox.database': '', ...conf },
  });
}

// CREATE DATABASE `name` (options: e.g. "TEMPLATE shop"), with the
// extension unless told not to, and an endpoint "own" receiving every topic
// at `sink` (signed with TEST_SECRET) when one is given.
export async function createDatabase(cluster, name, { sink, extension = true, options = '', endpoint } = {}) {
  await cluster.query(`CREATE DATABASE "${name}" ${options}`, [], 'postgres');
  if (extension) await cluster.query('CREATE EXTENSION outbox', [], name);
  if (sink) await addEndpoint(cluster, name, sink, endpoint);
}

export async function addEndpoint(cluster, database, sink, options = {}) {
  const { name = 'own', topics = ['*'], maxInFlight = null } = options;
  await cluster.query('SELECT outbox.create_endpoint($1, $2, topics => $3, secret => $4, max_in_flight => $5)',
    [name, sink.url, topics, TEST_SECRET, maxInFlight], database);
}

// Enqueues `n` events in `database` in one transaction; each payload names
// the database, so that a receiver can tell whose events it got. Returns
// their ids.
export async function enqueue(cluster, database, n = 1, { key = null, topic = 't', from = 0 } = {}) {
  const { rows } = await cluster.query(
    `SELECT array_agg(outbox.enqueue($1, jsonb_build_object('db', $2::text, 'n', i), key => $3) ORDER BY i) AS ids
     FROM generate_series($4::int, $4::int + $5::int - 1) AS i`,
    [topic, database, key, from, n], database);
  return rows[0].ids;
}

// Outbox workers by database name: { shop: 2, billing: 1 }.
export async function workersByDatabase(cluster) {
  const { rows } = await cluster.query(
    `SELECT datname, count(*)::int AS n FROM pg_stat_activity
     WHERE backend_type = 'outbox worker' GROUP BY datname`, [], 'postgres');
  return Object.fromEntries(rows.map((r) => [r.datname, r.n]));
}

// Watches pg_stat_activity until stopped, noting every database an outbox
// worker was seen in. Returns { seen: Set, stop() }.
export function watchWorkers(cluster, { interval = 20 } = {}) {
  const seen = new Set();
  let running = true;
  const loop = (async () => {
    const client = await cluster.client('postgres');
    try {
      while (running) {
        const { rows } = await client.query(
          "SELECT DISTINCT datname FROM pg_stat_activity WHERE backend_type = 'outbox worker'");
        for (const r of rows) seen.add(r.datname);
        await new Promise((resolve) => setTimeout(resolve, interval));
      }
    } finally {
      await client.end();
    }
  })();
  return {
    seen,
    async stop() {
      running = false;
      await loop;
    },
  };
}
