// Upgrading the extension in place. A database created at the last release
// is served by this library (a package upgrade: a new library, the old
// schema) while keyed events flow; ALTER EXTENSION outbox UPDATE runs in the
// middle of the stream. And an upgraded database has exactly the schema of a
// fresh install, from every release.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import { startCluster, waitFor } from '../lib/cluster.mjs';
import { startWithReceiver } from '../lib/setup.mjs';

const count = (text, pattern) => (text.match(pattern) || []).length;

// The released versions, oldest first (their scripts are frozen in
// extension/); the library is the version being built.
const RELEASES = ['0.1.0', '0.2.0'];
const LAST = RELEASES[RELEASES.length - 1];
const LIBRARY = readFileSync(new URL('../../outbox.control', import.meta.url), 'utf8')
  .match(/default_version = '([^']+)'/)[1];

// The extension's objects as text lines, sorted: what a fresh install and an
// upgrade must agree on (data aside).
const CATALOG_SQL = `
WITH ext AS (SELECT oid, extversion, extconfig, extcondition FROM pg_extension WHERE extname = 'outbox'),
members AS (SELECT classid, objid, objsubid FROM pg_depend
            WHERE refclassid = 'pg_extension'::regclass AND refobjid = (SELECT oid FROM ext) AND deptype = 'e'),
rels AS (SELECT c.* FROM pg_class c WHERE c.relnamespace = 'outbox'::regnamespace)
SELECT 'version ' || extversion FROM ext
UNION ALL SELECT 'member ' || pg_describe_object(classid, objid, objsubid) FROM members
UNION ALL SELECT 'dumped ' || u.rel::regclass || ' ' || coalesce(u.cond, '')
          FROM ext, unnest(ext.extconfig, ext.extcondition) AS u(rel, cond)
UNION ALL SELECT format('relation %s kind=%s persistence=%s options=%s acl=%s owner=%s',
                        oid::regclass, relkind, relpersistence, reloptions, relacl, relowner::regrole) FROM rels
UNION ALL SELECT format('column %s.%s #%s %s not null=%s default=%s identity=%s generated=%s acl=%s',
                        a.attrelid::regclass, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod),
                        a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, a.attacl)
          FROM pg_attribute a JOIN rels c ON c.oid = a.attrelid
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN rels c ON c.oid = i.indrelid
UNION ALL SELECT format('constraint %s on %s: %s', conname, conrelid::regclass, pg_get_constraintdef(oid))
          FROM pg_constraint WHERE connamespace = 'outbox'::regnamespace
UNION ALL SELECT format('function %s acl=%s owner=%s %s', p.oid::regprocedure, p.proacl, p.proowner::regrole,
                        pg_get_functiondef(p.oid))
          FROM pg_proc p WHERE p.pronamespace = 'outbox'::regnamespace
UNION ALL SELECT format('view %s: %s', oid::regclass, pg_get_viewdef(oid)) FROM rels WHERE relkind = 'v'
UNION ALL SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
          FROM pg_trigger t JOIN rels c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal
UNION ALL SELECT format('sequence %s %s', s.seqrelid::regclass,
                        row(s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmax, s.seqmin, s.seqcache, s.seqcycle))
          FROM pg_sequence s JOIN rels c ON c.oid = s.seqrelid
UNION ALL SELECT format('initial privileges %s: %s', pg_describe_object(ip.classoid, ip.objoid, ip.objsubid), ip.initprivs)
          FROM pg_init_privs ip JOIN members m ON m.classid = ip.classoid AND m.objid = ip.objoid
UNION ALL SELECT format('schema outbox acl=%s', nspacl) FROM pg_namespace WHERE nspname = 'outbox'
ORDER BY 1`;

async function catalog(cluster, db) {
  return (await cluster.query(CATALOG_SQL, [], db)).rows.map((r) => Object.values(r)[0]);
}

describe('extension upgrade', () => {
  test(`${LAST} -> ${LIBRARY} while keyed events flow and first attempts fail: the library waits for the update, nothing is lost, key order holds`, async () => {
    const failedOnce = new Set();
    const ok = [];  // ids answered 2xx, in order
    const { cluster, sink, destroy } = await startWithReceiver({
      createExtension: false,
      respond: (r) => {
        if (!failedOnce.has(r.id)) {
          failedOnce.add(r.id);
          return { status: 500 };
        }
        ok.push(r.id);
        return { status: 204 };
      },
    });
    try {
      await cluster.query(`CREATE EXTENSION outbox VERSION '${LAST}'`);
      await waitFor(() => cluster.log().includes(`extension "outbox" in database "outbox_test" is version ${LAST}, the library is version ${LIBRARY}; waiting`),
        { message: 'the worker saying it waits for the update' });

      const ids = [];
      const keyOf = new Map();
      const stream = (async () => {
        for (let i = 0; i < 200; i++) {
          const key = `k${i % 5}`;
          const { rows } = await cluster.query("SELECT outbox.enqueue('order.updated', $1::jsonb, key => $2) AS id",
            [JSON.stringify({ i }), key]);
          ids.push(rows[0].id);
          keyOf.set(rows[0].id, key);
        }
      })();
      await waitFor(() => ids.length >= 100, { message: 'half of the stream enqueued' });
      assert.equal(sink.requests.length, 0, 'nothing is sent against the old schema');
      await cluster.query('ALTER EXTENSION outbox UPDATE');
      await stream;

      await waitFor(() => ids.every((id) => ok.includes(id)), { timeout: 60000, message: 'every event answered 2xx' });
      assert.equal(new Set(ok).size, ok.length, 'each event succeeded once');
      for (let k = 0; k < 5; k++) {
        const key = `k${k}`;
        assert.deepEqual(ok.filter((id) => keyOf.get(id) === key), ids.filter((id) => keyOf.get(id) === key), `order of ${key}`);
      }
      const log = cluster.log();
      assert.equal(count(log, /waiting for the extension to be updated/g), 1, 'said once');
      assert.match(log, /HINT:\s+Run ALTER EXTENSION outbox UPDATE in that database/);
      assert.doesNotMatch(log, /outbox: worker \d+ exited|terminated by signal/);
    } finally {
      await destroy();
    }
  });

  for (const from of RELEASES) {
    test(`a database upgraded from ${from} has the schema of a fresh install: tables, columns, defaults, indexes, constraints, functions, triggers, views, grants, what pg_dump keeps`, async () => {
      const cluster = await startCluster({ createExtension: false, conf: { 'outbox.paused': 'on' } });
      try {
        await cluster.query(`CREATE EXTENSION outbox VERSION '${from}'`);
        await cluster.query("SELECT outbox.enqueue('before.upgrade', '{}')");
        await cluster.query('ALTER EXTENSION outbox UPDATE');
        await cluster.query('CREATE DATABASE fresh', [], 'postgres');
        await cluster.query('CREATE EXTENSION outbox', [], 'fresh');
        const upgraded = await catalog(cluster, cluster.database);
        const fresh = await catalog(cluster, 'fresh');
        assert.ok(fresh.length > 100, `the catalog query sees the extension (${fresh.length} lines)`);
        assert.ok(fresh.includes(`version ${LIBRARY}`), 'a fresh install is the library\'s version');
        const onlyUpgraded = upgraded.filter((line) => !fresh.includes(line));
        const onlyFresh = fresh.filter((line) => !upgraded.includes(line));
        assert.deepEqual({ onlyUpgraded, onlyFresh }, { onlyUpgraded: [], onlyFresh: [] });
        assert.equal((await cluster.query('SELECT count(*)::int AS n FROM outbox.events')).rows[0].n, 1, 'the event is kept');
      } finally {
        await cluster.destroy();
      }
    });
  }
});
