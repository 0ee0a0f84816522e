\set SHOW_CONTEXT never
-- Who may do what. Every function and relation of the extension is listed:
-- none may be reachable by PUBLIC, and every function has a fixed search_path.
SELECT p.oid::regprocedure AS function
FROM pg_depend dep JOIN pg_proc p ON p.oid = dep.objid
WHERE dep.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'outbox') AND dep.classid = 'pg_proc'::regclass
  AND (has_function_privilege('public', p.oid, 'EXECUTE')
       OR NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) AS c WHERE c LIKE 'search_path=%'));
SELECT c.oid::regclass AS relation
FROM pg_depend dep JOIN pg_class c ON c.oid = dep.objid
WHERE dep.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'outbox') AND dep.classid = 'pg_class'::regclass
  AND (has_table_privilege('public', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
       OR (c.relkind = 'S' AND has_sequence_privilege('public', c.oid, 'USAGE, SELECT, UPDATE')));
SELECT has_schema_privilege('public', 'outbox', 'USAGE') AS public_schema_usage;

-- The whole picture: every function, whether it runs as its owner, and who
-- may call it.
SELECT p.oid::regprocedure AS function, p.prosecdef AS definer,
       has_function_privilege('outbox_writer', p.oid, 'EXECUTE') AS writer,
       has_function_privilege('outbox_admin', p.oid, 'EXECUTE') AS admin
FROM pg_depend dep JOIN pg_proc p ON p.oid = dep.objid
WHERE dep.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'outbox') AND dep.classid = 'pg_proc'::regclass
ORDER BY p.oid::regprocedure::text;
SELECT c.oid::regclass AS relation,
       has_table_privilege('outbox_writer', c.oid, 'SELECT') AS writer_reads,
       has_table_privilege('outbox_admin', c.oid, 'SELECT') AS admin_reads,
       has_table_privilege('outbox_admin', c.oid, 'INSERT, UPDATE, DELETE') AS admin_writes
FROM pg_depend dep JOIN pg_class c ON c.oid = dep.objid
WHERE dep.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'outbox')
  AND dep.classid = 'pg_class'::regclass AND c.relkind IN ('r', 'v')
ORDER BY c.oid::regclass::text;

-- A writer enqueues, and can neither read endpoints or secrets nor change
-- delivery state.
CREATE ROLE regress_writer LOGIN IN ROLE outbox_writer;
CREATE ROLE regress_admin LOGIN IN ROLE outbox_admin;
SET ROLE regress_admin;
SELECT outbox.create_endpoint('partner', 'https://partner.example.com/in') ~ '^whsec_' AS admin_creates;
RESET ROLE;
SET ROLE regress_writer;
SELECT outbox.enqueue('security.check', '{}') IS NOT NULL AS writer_enqueues;
SELECT * FROM outbox.endpoints;
SELECT * FROM outbox.endpoint_secrets;
SELECT * FROM outbox.endpoint_status;
SELECT * FROM outbox.deliveries;
UPDATE outbox.deliveries SET state = 'delivered';
DELETE FROM outbox.events;
SELECT outbox.dispatch(10);
SELECT outbox.create_endpoint('evil', 'https://evil.example.com/');
SELECT outbox.rotate_secret('partner');
SELECT outbox.replay('00000000-0000-7000-8000-000000000000');
RESET ROLE;

-- An admin manages endpoints and reads history, but not secrets.
SET ROLE regress_admin;
SELECT name, enabled FROM outbox.endpoint_status ORDER BY name;
SELECT count(*) >= 1 AS reads_events FROM outbox.events;
SELECT * FROM outbox.endpoint_secrets;
SELECT outbox.dispatch(10);
UPDATE outbox.deliveries SET state = 'delivered';
SELECT outbox.rotate_secret('partner') ~ '^whsec_' AS admin_rotates;
SELECT outbox.drop_endpoint('partner');
RESET ROLE;
DROP ROLE regress_writer;
DROP ROLE regress_admin;
TRUNCATE outbox.events, outbox.deliveries;
