-- outbox 0.1.0: the transactional outbox, delivered by a background worker.
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

-- One row per enqueued event; the payload is stored once, however many
-- endpoints receive it. id is the webhook-id; seq is the enqueue order that
-- per-key ordering follows (a sequence without cache, so that it is
-- monotonic across sessions).
CREATE TABLE outbox.events (
    id          uuid        NOT NULL PRIMARY KEY,
    seq         bigint      NOT NULL GENERATED ALWAYS AS IDENTITY,
    topic       text        NOT NULL,
    key         text,
    payload     jsonb       NOT NULL,
    headers     jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per (event, endpoint): its own attempts, schedule and final state.
-- endpoint_id 0 is the default endpoint, outbox.url. next_attempt_at doubles
-- as the lease: a claim moves it into the future, so a crashed worker's
-- deliveries come back by themselves. seq and key are copied from the event
-- so that the claim's per-key check needs no join.
CREATE TABLE outbox.deliveries (
    event_id        uuid        NOT NULL,
    endpoint_id     integer     NOT NULL,
    seq             bigint      NOT NULL,
    key             text,
    state           text        NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    last_status     integer,
    last_error      text,
    last_duration   interval,
    last_response   text,
    finished_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, endpoint_id)
) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05);

-- What the claim scans: only pending rows, in due order, so that its cost
-- does not grow with delivered history or with the backlog.
CREATE INDEX deliveries_due ON outbox.deliveries (endpoint_id, next_attempt_at)
    WHERE state = 'pending';

-- Per-key order: "is there an earlier pending delivery of this key?"
CREATE INDEX deliveries_key_order ON outbox.deliveries (endpoint_id, key, seq)
    WHERE state = 'pending' AND key IS NOT NULL;

-- What pruning scans: finished rows, oldest first.
CREATE INDEX deliveries_finished ON outbox.deliveries (state, finished_at)
    WHERE state <> 'pending';

ALTER TABLE outbox.events SET (autovacuum_vacuum_scale_factor = 0.02,
                               autovacuum_vacuum_insert_scale_factor = 0.05);

-- enqueue() validates, writes the event and its deliveries, and arranges for
-- the workers to be woken at commit. SECURITY DEFINER: writers may enqueue
-- without having any privilege on the tables.
CREATE FUNCTION outbox.enqueue(topic text, payload jsonb, key text DEFAULT NULL,
                               headers jsonb DEFAULT NULL, event_id uuid DEFAULT NULL)
RETURNS uuid
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outbox_enqueue';

COMMENT ON FUNCTION outbox.enqueue(text, jsonb, text, jsonb, uuid) IS
    'Enqueue an event in the current transaction; returns its id (the webhook-id)';

-- Nothing is reachable by PUBLIC; writers enqueue, admins read history.
REVOKE ALL ON SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA outbox FROM PUBLIC;
GRANT USAGE ON SCHEMA outbox TO outbox_writer, outbox_admin;
GRANT EXECUTE ON FUNCTION outbox.enqueue(text, jsonb, text, jsonb, uuid) TO outbox_writer, outbox_admin;
GRANT SELECT ON outbox.events, outbox.deliveries TO outbox_admin;
