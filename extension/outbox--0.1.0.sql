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
-- monotonic across sessions); txid is the enqueuing transaction, which tells
-- the worker which events became visible since it last looked.
--
-- enqueue() writes this row and nothing else: one heap tuple and two index
-- entries, what a hand-made outbox table costs. The worker turns events into
-- deliveries afterwards (outbox.dispatch), outside the producer's transaction.
CREATE TABLE outbox.events (
    id          uuid        NOT NULL PRIMARY KEY,
    seq         bigint      NOT NULL GENERATED ALWAYS AS IDENTITY,
    txid        xid8        NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    topic       text        NOT NULL,
    key         text,
    payload     jsonb       NOT NULL,
    headers     jsonb,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- What dispatch scans: events by enqueuing transaction.
CREATE INDEX events_dispatch ON outbox.events (txid, seq);

-- One row per (event, endpoint), made by dispatch: its own attempts,
-- schedule and final state. endpoint_id 0 is the default endpoint, outbox.url. next_attempt_at doubles
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

-- How far dispatch has come, as transaction snapshots (the technique of
-- PgQ): every event whose transaction is visible in done_snapshot has its
-- deliveries. A pass works towards target_snapshot in batches, remembering
-- the last (txid, seq) it handled. One row; its row lock serializes
-- dispatchers.
CREATE TABLE outbox.dispatch_state (
    singleton       boolean     NOT NULL PRIMARY KEY DEFAULT true CHECK (singleton),
    done_snapshot   pg_snapshot,            -- NULL: nothing dispatched yet
    target_snapshot pg_snapshot,            -- NULL: no pass under way
    cursor_txid     xid8,
    cursor_seq      bigint
);
INSERT INTO outbox.dispatch_state DEFAULT VALUES;

-- Creates the deliveries of up to max_events events that became visible
-- since the last call, for the default endpoint (endpoint_id 0). Called by
-- the worker; returns the number of events dispatched. An event is new when
-- its transaction is visible now but was not in done_snapshot: it was in
-- progress then (done_snapshot's xip list) or started after it (txid >= its
-- xmax). Both are index lookups, so a long-running transaction does not make
-- dispatch rescan old events.
CREATE FUNCTION outbox.dispatch(max_events integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    state     outbox.dispatch_state;
    last_txid xid8;
    last_seq  bigint;
    n         integer;
BEGIN
    SELECT * INTO state FROM outbox.dispatch_state FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN 0;  -- another worker is dispatching
    END IF;
    IF state.target_snapshot IS NULL THEN
        state.target_snapshot := pg_current_snapshot();
        state.cursor_txid := '0'::xid8;
        state.cursor_seq := 0;
    END IF;

    WITH candidates AS (
        (SELECT e.id, e.seq, e.txid, e.key
         FROM outbox.events AS e
         WHERE state.done_snapshot IS NOT NULL
           AND e.txid = ANY (ARRAY(SELECT pg_snapshot_xip(state.done_snapshot)))
           AND (e.txid, e.seq) > (state.cursor_txid, state.cursor_seq)
           AND pg_visible_in_snapshot(e.txid, state.target_snapshot)
         ORDER BY e.txid, e.seq
         LIMIT max_events)
        UNION ALL
        (SELECT e.id, e.seq, e.txid, e.key
         FROM outbox.events AS e
         WHERE e.txid >= COALESCE(pg_snapshot_xmax(state.done_snapshot), '0'::xid8)
           AND e.txid < pg_snapshot_xmax(state.target_snapshot)
           AND (e.txid, e.seq) > (state.cursor_txid, state.cursor_seq)
           AND pg_visible_in_snapshot(e.txid, state.target_snapshot)
         ORDER BY e.txid, e.seq
         LIMIT max_events)
    ), batch AS (
        SELECT * FROM candidates ORDER BY txid, seq LIMIT max_events
    ), inserted AS (
        INSERT INTO outbox.deliveries (event_id, endpoint_id, seq, key)
        SELECT b.id, 0, b.seq, b.key FROM batch AS b
        ON CONFLICT DO NOTHING
    )
    SELECT count(*),
           (array_agg(b.txid ORDER BY b.txid DESC, b.seq DESC))[1],
           (array_agg(b.seq ORDER BY b.txid DESC, b.seq DESC))[1]
    INTO n, last_txid, last_seq
    FROM batch AS b;

    IF n < max_events THEN
        -- The pass is complete: everything visible in target is dispatched.
        UPDATE outbox.dispatch_state
        SET done_snapshot = state.target_snapshot, target_snapshot = NULL,
            cursor_txid = NULL, cursor_seq = NULL;
    ELSE
        UPDATE outbox.dispatch_state
        SET target_snapshot = state.target_snapshot,
            cursor_txid = last_txid, cursor_seq = last_seq;
    END IF;
    RETURN n;
END
$$;

-- enqueue() validates, writes the event, and arranges for the workers to be
-- woken at commit. SECURITY DEFINER: writers may enqueue
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

