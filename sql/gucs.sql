-- The outbox.* settings: defaults, units, validation, and who may see or
-- change what.
-- (outbox.broker_protocols depends on the build: sql/brokers.sql shows it.)
SELECT name, setting, unit, context, vartype
FROM pg_settings
WHERE name LIKE 'outbox.%' AND name <> 'outbox.broker_protocols'
ORDER BY name;

-- Units as PostgreSQL shows them.
SHOW outbox.request_timeout;
SHOW outbox.retry_max;
SHOW outbox.retention;
SHOW outbox.max_payload_size;

-- Invalid values are refused with a clear message (ALTER SYSTEM runs the
-- same checks as postgresql.conf) and nothing is written.
ALTER SYSTEM SET outbox.url = 'ftp://example.com/hook';
ALTER SYSTEM SET outbox.url = 'http://exa mple.com/';
ALTER SYSTEM SET outbox.secret = 'not-a-secret';
ALTER SYSTEM SET outbox.secret = 'whsec_***';
ALTER SYSTEM SET outbox.allowed_networks = '127.0.0.1/33';
ALTER SYSTEM SET outbox.allowed_networks = 'localhost';
ALTER SYSTEM SET outbox.batch_size = 0;
-- (PostgreSQL words its range message differently from version to version,
-- 18 adds the units: the SQLSTATE is what is checked.)
\set VERBOSITY sqlstate
ALTER SYSTEM SET outbox.request_timeout = '-1s';
\set VERBOSITY default
ALTER SYSTEM SET outbox.poll_interval = 'soon';
ALTER SYSTEM SET outbox.channel = '';
ALTER SYSTEM SET outbox.paused = 'perhaps';
ALTER SYSTEM SET outbox.max_attempts = 0;
SET outbox.notify_on_enqueue = 'maybe';

-- outbox.paused and outbox.workers are the server's (postgresql.conf) or a
-- database's (ALTER DATABASE ... SET), never a session's.
SET outbox.paused = on;
SET outbox.workers = 4;
SELECT set_config('outbox.paused', 'on', false);
ALTER DATABASE contrib_regression SET outbox.paused = on;
ALTER DATABASE contrib_regression SET outbox.workers = 3;
ALTER DATABASE contrib_regression SET outbox.workers = 0;
ALTER ROLE ALL IN DATABASE contrib_regression SET outbox.paused = 'maybe';
SELECT s AS database_setting
FROM pg_db_role_setting, unnest(setconfig) AS s
WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) AND setrole = 0
  AND s LIKE 'outbox.%'
ORDER BY 1;
ALTER DATABASE contrib_regression RESET outbox.workers;
ALTER DATABASE contrib_regression RESET outbox.paused;
-- outbox.database and outbox.max_workers are the server's only.
ALTER DATABASE contrib_regression SET outbox.max_workers = 4;
ALTER DATABASE contrib_regression SET outbox.database = 'x';

-- The secret is for superusers only.
CREATE ROLE regress_outbox_user LOGIN;
SET ROLE regress_outbox_user;
-- (PostgreSQL's wording of the refusal changed after 15: 42501 is
-- insufficient_privilege.)
\set VERBOSITY sqlstate
SHOW outbox.secret;
SELECT count(*) AS visible_secret_rows FROM pg_settings WHERE name = 'outbox.secret';
SELECT current_setting('outbox.secret');
\set VERBOSITY default

-- Users may lower max_payload_size for their session, not raise it.
SET outbox.max_payload_size = '1kB';
SHOW outbox.max_payload_size;
SET outbox.max_payload_size = '2MB';
RESET outbox.max_payload_size;
RESET ROLE;
SET outbox.max_payload_size = '2MB';
SHOW outbox.max_payload_size;
RESET outbox.max_payload_size;
DROP ROLE regress_outbox_user;
