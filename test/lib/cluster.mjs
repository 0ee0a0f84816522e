// A throwaway PostgreSQL cluster with the extension preloaded, for
// end-to-end tests: initdb in a temporary directory, a Unix socket there,
// the real server, the real worker; and streaming standbys of such a
// cluster. PostgreSQL refuses to run as root, so as root the server runs as
// the postgres user.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

// The server under test: the one whose pg_config is first on PATH. A
// cluster may be made with another one's programs (`bindir`), e.g. the
// older server of a pg_upgrade test.
const defaultBindir = execFileSync('pg_config', ['--bindir']).toString().trim();
const asRoot = process.getuid() === 0;

// OUTBOX_E2E_PRELOAD=lib.so: the server runs with LD_PRELOAD=lib.so (a
// sanitizer's runtime, for a library built with it: scripts/e2e-asan.sh);
// only pg_ctl, which starts it, gets it, not this process.
function serverEnv(program) {
  const preload = process.env.OUTBOX_E2E_PRELOAD;
  return preload && program === 'pg_ctl' ? { ...process.env, LD_PRELOAD: preload } : process.env;
}

function runAsPostgres(program, args, { check = true, bindir = defaultBindir, cwd } = {}) {
  const cmd = asRoot ? 'runuser' : path.join(bindir, program);
  const argv = asRoot ? ['-u', 'postgres', '--', path.join(bindir, program), ...args] : args;
  const result = spawnSync(cmd, argv, { encoding: 'utf8', cwd, env: serverEnv(program) });
  if (check && result.status !== 0) {
    throw new Error(`${program} ${args.join(' ')} failed (${result.status}): ${result.stderr || result.stdout}`);
  }
  return result;
}

function confLine(name, value) {
  if (typeof value === 'number' || typeof value === 'boolean') return `${name} = ${value}`;
  return `${name} = '${String(value).replaceAll("'", "''")}'`;
}

let nextPort = 20000 + (process.pid % 20000);

// Polls `condition` (sync or async) until it returns a truthy value, which
// it returns; fails with `message` after `timeout` ms.
export async function waitFor(condition, { timeout = 30000, interval = 50, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await condition();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${message}` + (last instanceof Error ? `: ${last.message}` : ''));
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

// Appends settings to a data directory's postgresql.conf; later lines win.
function appendSettings(data, settings, heading) {
  const lines = Object.entries(settings).filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => confLine(k, v));
  fs.appendFileSync(path.join(data, 'postgresql.conf'), `\n# ${heading}\n${lines.join('\n')}\n`);
}

// A temporary directory the server may use: its socket and log go there,
// its data directory is `data` inside it.
function makeClusterDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outbox-e2e-'));
  if (asRoot) execFileSync('chown', ['postgres:', dir]);
  return dir;
}

// Clusters are made alike on every server: 18 turned data checksums on by
// default, and pg_upgrade wants the old and the new cluster to agree.
function initdb(data, bindir) {
  const major = Number(/(\d+)/.exec(execFileSync(path.join(bindir, 'initdb'), ['--version']).toString())[1]);
  runAsPostgres('initdb', ['-D', data, '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C', '-U', 'postgres',
                           ...(major >= 18 ? ['--no-data-checksums'] : [])], { bindir });
}

export async function startCluster({ conf = {}, preload = true, database = 'outbox_test', createExtension = true,
                                     createDatabase = true, bindir = defaultBindir } = {}) {
  const dir = makeClusterDir();
  const data = path.join(dir, 'data');
  const port = nextPort++;
  initdb(data, bindir);
  const settings = {
    listen_addresses: '',
    unix_socket_directories: dir,
    port,
    max_prepared_transactions: 4,
    'outbox.database': database,
    'outbox.poll_interval': '200ms',
    'outbox.retry_base': '100ms',
    'outbox.retry_max': '1s',
    'outbox.allowed_networks': '127.0.0.1/32',
    // Most tests watch one worker (its pid, its restarts); the ones about
    // sharing the queue set outbox.workers = 2, the default, themselves.
    'outbox.workers': 1,
    ...(preload ? { shared_preload_libraries: 'outbox' } : {}),
    ...conf,
  };
  appendSettings(data, settings, 'end-to-end test settings');

  const cluster = clusterHandle({ dir, port, database, bindir, settings });
  await cluster.start();
  if (createDatabase && database !== 'postgres') await cluster.query(`CREATE DATABASE ${database}`, [], 'postgres');
  if (createDatabase && createExtension) await cluster.query('CREATE EXTENSION outbox');
  return cluster;
}

// A streaming hot standby of `primary`: pg_basebackup -R over the primary's
// Unix socket into a new directory, with its own port and socket, started.
// It has the primary's settings (postgresql.conf and postgresql.auto.conf
// as they are now), then `conf`. The handle is a cluster's, with promote().
export async function startStandby(primary, { conf = {} } = {}) {
  const dir = makeClusterDir();
  const data = path.join(dir, 'data');
  const port = nextPort++;
  runAsPostgres('pg_basebackup', ['-h', primary.dir, '-p', String(primary.port), '-U', 'postgres', '-D', data,
                                  '-R', '--checkpoint=fast', '--no-sync']);
  appendSettings(data, { unix_socket_directories: dir, port, ...conf }, 'standby settings');
  const standby = clusterHandle({ dir, port, database: primary.database });
  await standby.start();
  return standby;
}

// Debian's PostgreSQL 15.20 records an "attribute version" in the
// attoptions of every column it creates (pg_attver); PostgreSQL 18.6, the
// newest 18 Debian has, does not know that option, so its pg_upgrade fails
// on any database made by 15.20 ('unrecognized parameter "pg_attver"'),
// whatever the extension. Until an 18 that knows it is packaged, the test
// removes the option from the old cluster's columns (in `databases`)
// before upgrading.
export async function forgetAttributeVersions(cluster, databases) {
  for (const db of databases) {
    await cluster.query(`UPDATE pg_catalog.pg_attribute
                         SET attoptions = NULLIF(array(SELECT o FROM unnest(attoptions) AS o WHERE o NOT LIKE 'pg_attver=%'), '{}')
                         WHERE attoptions::text LIKE '%pg_attver=%'`, [], db);
  }
}

// Upgrades the stopped cluster `old` with pg_upgrade to the server whose
// programs are in `bindir` (by default the one under test), into a new
// directory with the same settings, then `conf`. Returns the new cluster's
// handle, not started; `old` is left as pg_upgrade leaves it.
export async function pgUpgrade(old, { bindir = defaultBindir, conf = {} } = {}) {
  const dir = makeClusterDir();
  const data = path.join(dir, 'data');
  const port = nextPort++;
  initdb(data, bindir);
  const settings = { ...old.settings, unix_socket_directories: dir, port, ...conf };
  appendSettings(data, settings, 'end-to-end test settings');
  // pg_upgrade writes its logs under the current directory and the new
  // data directory; its temporary servers listen on a socket in `dir`.
  const upgrade = runAsPostgres('pg_upgrade', ['-b', old.bindir, '-B', bindir, '-d', path.join(old.dir, 'data'),
                                               '-D', data, '-p', String(old.port), '-P', String(port), '-s', dir,
                                               '--no-sync'], { bindir, cwd: dir, check: false });
  if (upgrade.status !== 0) {
    // Its logs go with the directory: say what they say.
    const logs = spawnSync('sh', ['-c', `tail -n 15 ${data}/pg_upgrade_output.d/*/log/*.log`], { encoding: 'utf8' }).stdout;
    throw new Error(`pg_upgrade failed (${upgrade.status}): ${upgrade.stdout}\n${logs}`);
  }
  return clusterHandle({ dir, port, database: old.database, bindir, settings });
}

// The handle of a cluster in `dir` (data directory, socket and log there),
// run with the programs in `bindir` (cluster.bindir: set it while the
// cluster is stopped to start it with another build of the same server).
function clusterHandle({ dir, port, database, bindir = defaultBindir, settings = {} }) {
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  const connection = (db) => ({ host: dir, port, user: 'postgres', database: db });
  const cluster = {
    dir,
    port,
    database,
    logFile,
    bindir,
    settings,
    async start() {
      runAsPostgres('pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', '60', 'start'], { bindir: cluster.bindir });
    },
    async stop({ mode = 'fast' } = {}) {
      runAsPostgres('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop'], { check: false, bindir: cluster.bindir });
    },
    async restart({ mode = 'fast' } = {}) {
      runAsPostgres('pg_ctl', ['-D', data, '-l', logFile, '-m', mode, '-w', '-t', '60', 'restart'], { bindir: cluster.bindir });
    },
    // Ends recovery of a standby; returns once it accepts writes.
    async promote() {
      runAsPostgres('pg_ctl', ['-D', data, '-w', '-t', '60', 'promote'], { bindir: cluster.bindir });
    },
    async query(sql, params = [], db = database) {
      const client = new pg.Client(connection(db));
      client.on('error', () => {});  // a server going away mid-test surfaces as a failed query
      await client.connect();
      try {
        return await client.query(sql, params);
      } finally {
        await client.end();
      }
    },
    // A connected client for explicit transactions; the caller ends it.
    async client(db = database) {
      const client = new pg.Client(connection(db));
      client.on('error', () => {});  // a server going away mid-test surfaces as a failed query
      await client.connect();
      return client;
    },
    async reload(values) {
      for (const [name, value] of Object.entries(values)) {
        if (value === null) await cluster.query(`ALTER SYSTEM RESET ${name}`, [], 'postgres');
        else await cluster.query(`ALTER SYSTEM SET ${name} = ${pg.escapeLiteral(String(value))}`, [], 'postgres');
      }
      await cluster.query('SELECT pg_reload_conf()', [], 'postgres');
      // Reloading is asynchronous: wait until new sessions see the values
      // (the postmaster has read the file; the worker reacts to the same
      // signal at once). Values are compared as PostgreSQL shows them.
      await waitFor(async () => {
        for (const [name, value] of Object.entries(values)) {
          if (value === null) continue;
          const { rows } = await cluster.query('SELECT current_setting($1) AS v', [name], 'postgres');
          if (rows[0].v !== String(value)) return false;
        }
        return true;
      }, { timeout: 10000, message: `settings ${JSON.stringify(values)} to load` });
      await new Promise((resolve) => setTimeout(resolve, 50));
    },
    // Runs a client program of this server (pg_dump, pg_restore, psql, ...)
    // as the postgres user, connected to this cluster; returns its result
    // ({ status, stdout, stderr }). Files it writes belong in cluster.dir.
    run(program, args, options) {
      return runAsPostgres(program, ['-h', dir, '-p', String(port), '-U', 'postgres', ...args], { bindir: cluster.bindir, ...options });
    },
    literal(value) {
      return pg.escapeLiteral(String(value));
    },
    log() {
      try {
        return fs.readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
    async workerPids() {
      const { rows } = await cluster.query(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'outbox worker' ORDER BY pid", [], 'postgres');
      return rows.map((r) => r.pid);
    },
    // Deliveries by state, and events not dispatched yet.
    async counts() {
      const { rows } = await cluster.query(`
        SELECT (SELECT count(*) FROM outbox.events)::int AS events,
               (SELECT count(*) FROM outbox.deliveries WHERE state = 'pending')::int AS pending,
               (SELECT count(*) FROM outbox.deliveries WHERE state = 'delivered')::int AS delivered,
               (SELECT count(*) FROM outbox.deliveries WHERE state = 'dead')::int AS dead`);
      return rows[0];
    },
    async destroy() {
      await cluster.stop({ mode: 'immediate' });
      // OUTBOX_E2E_LOGS=dir keeps each cluster's server log for a post-mortem.
      if (process.env.OUTBOX_E2E_LOGS) {
        fs.mkdirSync(process.env.OUTBOX_E2E_LOGS, { recursive: true });
        fs.copyFileSync(logFile, path.join(process.env.OUTBOX_E2E_LOGS, `${path.basename(dir)}.log`));
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };

  return cluster;
}
