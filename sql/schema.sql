-- The objects CREATE EXTENSION outbox makes, and who may reach them.
CREATE EXTENSION outbox;

SELECT extname, extversion, extrelocatable, n.nspname AS schema
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE extname = 'outbox';

-- Tables are WAL-logged (relpersistence p): events survive crashes.
SELECT c.relname, c.relkind, c.relpersistence
FROM pg_class c
WHERE c.relnamespace = 'outbox'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p')
ORDER BY c.relname;

SELECT table_name, column_name, data_type, is_nullable, column_default
FROM information_schema.columns
WHERE table_schema = 'outbox'
ORDER BY table_name, ordinal_position;

-- Partial indexes keep the claim's cost independent of history and backlog.
SELECT indexrelid::regclass AS index, pg_get_indexdef(indexrelid) AS definition
FROM pg_index
WHERE indrelid IN ('outbox.events'::regclass, 'outbox.deliveries'::regclass)
ORDER BY indexrelid::regclass::text;

-- Every function: fixed search_path; SECURITY DEFINER only where needed.
SELECT p.oid::regprocedure AS function, p.prosecdef AS security_definer, p.proconfig
FROM pg_proc p
WHERE p.pronamespace = 'outbox'::regnamespace
ORDER BY p.oid::regprocedure::text;

-- The roles exist; PUBLIC reaches nothing.
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'outbox\_%' ORDER BY 1;

SELECT has_schema_privilege('public', 'outbox', 'USAGE') AS public_schema_usage,
       has_function_privilege('public', 'outbox.enqueue(text, jsonb, text, jsonb, uuid, text)', 'EXECUTE')
           AS public_enqueue,
       has_table_privilege('public', 'outbox.events', 'SELECT') AS public_events,
       has_table_privilege('public', 'outbox.deliveries', 'SELECT') AS public_deliveries;

SELECT has_function_privilege('outbox_writer', 'outbox.enqueue(text, jsonb, text, jsonb, uuid, text)', 'EXECUTE')
           AS writer_enqueue,
       has_table_privilege('outbox_writer', 'outbox.events', 'SELECT, INSERT, UPDATE, DELETE') AS writer_events,
       has_table_privilege('outbox_writer', 'outbox.deliveries', 'SELECT, INSERT, UPDATE, DELETE')
           AS writer_deliveries,
       has_table_privilege('outbox_admin', 'outbox.deliveries', 'SELECT') AS admin_reads_deliveries;

-- A writer enqueues through the function, without any table privilege.
CREATE ROLE regress_outbox_app LOGIN IN ROLE outbox_writer;
SET ROLE regress_outbox_app;
SELECT outbox.enqueue('schema.check', '{}') IS NOT NULL AS enqueued;
SELECT count(*) FROM outbox.events;
RESET ROLE;
SELECT topic FROM outbox.events;

-- The extension drops cleanly and comes back. (Its schema stays, empty, as
-- for any extension whose control file names its schema.)
DROP EXTENSION outbox;
SELECT count(*) AS objects_left FROM pg_class WHERE relnamespace = 'outbox'::regnamespace;
CREATE EXTENSION outbox;
SELECT count(*) FROM outbox.events;
DROP ROLE regress_outbox_app;
