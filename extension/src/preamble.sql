-- outbox: the transactional outbox, delivered by a background worker.
-- Built from extension/src/ (see the Makefile): this file is generated.
\echo Use "CREATE EXTENSION outbox" to load this file. \quit

-- The workers run only when the library is preloaded; enqueue() works
-- without it, but nothing would be delivered.
DO $$
BEGIN
    IF NOT pg_catalog.string_to_array(
            pg_catalog.replace(pg_catalog.current_setting('shared_preload_libraries'), ' ', ''), ',')
           @> ARRAY['outbox'] THEN
        RAISE WARNING 'outbox is not in shared_preload_libraries: events will be stored but not delivered'
            USING HINT = 'Add outbox to shared_preload_libraries in postgresql.conf and restart the server.';
    END IF;
END
$$;

-- Roles are cluster-wide and outlive the extension: create them only once.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'outbox_writer') THEN
        CREATE ROLE outbox_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'outbox_admin') THEN
        CREATE ROLE outbox_admin NOLOGIN;
    END IF;
END
$$;
