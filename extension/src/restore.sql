-- Backup and restore.
--
-- pg_dump leaves out the rows of an extension's tables unless the extension
-- names them: every table of the queue is named here, with the sequences
-- that number events and endpoints, so that a dump (custom, plain or
-- pg_dumpall) carries endpoints and their secrets, events and the state of
-- every delivery. pg_restore runs CREATE EXTENSION, then loads the rows;
-- the triggers below fit them into what CREATE EXTENSION made.
--
-- The one thing a restore cannot carry over is meaning of transaction ids.
-- Dispatch tells new events by the transaction that enqueued them
-- (events.txid against dispatch_state's snapshots), and the ids of the
-- dumped cluster mean nothing in the restoring one. So every restored
-- event is placed anew as it arrives (outbox.restored_txid): one that the
-- dumped database had dispatched gets a txid that dispatch never looks at
-- again; one it had not gets the restoring transaction's own txid, so it is
-- dispatched once that commits, like an event enqueued there. Which was
-- which the dumped dispatch state says, and pg_dump loads it before the
-- events (dispatch_state sorts before events, and so before it in every
-- serial restore). Should events come first all the same (a parallel
-- restore, a hand-picked list), they are held apart (txid + 2^62, which no
-- dispatch reaches) until the dispatch state arrives and places them.
SELECT pg_catalog.pg_extension_config_dump('outbox.events', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.deliveries', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.endpoints', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.endpoint_secrets', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.dispatch_state', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.attempts', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.idempotency_keys', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.events_seq_seq', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.endpoints_id_seq', '');

-- Where a restored event goes, given the txid and seq it had in the dumped
-- database: a txid dispatch never reaches ('1': visible in every snapshot,
-- older than any) if it was dispatched there; this transaction's txid if
-- not; held apart (txid + 2^62) while the dumped dispatch state is unknown.
-- (Before any restore, a row written by hand with this transaction's txid,
-- the column's default, is taken as it is.)
CREATE OR REPLACE FUNCTION outbox.restored_txid(dumped_txid xid8, dumped_seq bigint)
RETURNS xid8
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s outbox.dispatch_state;
BEGIN
    SELECT * INTO s FROM outbox.dispatch_state;
    IF s.restored_at IS NULL THEN
        IF dumped_txid = pg_current_xact_id() THEN
            RETURN dumped_txid;
        END IF;
        RETURN (dumped_txid::text::numeric + 4611686018427387904)::text::xid8;
    END IF;
    IF (s.restored_done_snapshot IS NOT NULL
        AND pg_visible_in_snapshot(dumped_txid, s.restored_done_snapshot))
       OR (s.restored_target_snapshot IS NOT NULL
           AND pg_visible_in_snapshot(dumped_txid, s.restored_target_snapshot)
           AND (dumped_txid, dumped_seq) <= (s.restored_cursor_txid, s.restored_cursor_seq)) THEN
        RETURN '1'::xid8;
    END IF;
    RETURN pg_current_xact_id();
END
$$;

-- Places the events that were held apart, once the dumped dispatch state is
-- known. Called when it arrives, and by dispatch.
CREATE OR REPLACE FUNCTION outbox.place_restored_events()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    placed integer;
BEGIN
    UPDATE outbox.events AS e
    SET txid = outbox.restored_txid((e.txid::text::numeric - 4611686018427387904)::text::xid8, e.seq)
    WHERE e.txid >= '4611686018427387904'::xid8;
    GET DIAGNOSTICS placed = ROW_COUNT;
    RETURN placed;
END
$$;

-- An event row that enqueue() did not write comes from a restore: place it
-- (outbox.restored_txid). enqueue()'s own rows pass untouched; most of them
-- do not even pass by this trigger. (Telling them apart by txid would not
-- do: a restored txid can equal the restoring transaction's by chance.)
CREATE OR REPLACE FUNCTION outbox.restore_event()
RETURNS trigger
LANGUAGE c
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outbox_restore_event';
CREATE OR REPLACE TRIGGER events_restore BEFORE INSERT ON outbox.events
FOR EACH ROW EXECUTE FUNCTION outbox.restore_event();

-- CREATE EXTENSION made the dispatch state's one row; a restored row is the
-- dumped database's state, kept beside this database's own.
CREATE OR REPLACE FUNCTION outbox.restore_dispatch_state()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE outbox.dispatch_state
    SET restored_at = now(),
        restored_done_snapshot = NEW.done_snapshot,
        restored_target_snapshot = NEW.target_snapshot,
        restored_cursor_txid = NEW.cursor_txid,
        restored_cursor_seq = NEW.cursor_seq;
    IF NOT FOUND THEN
        RETURN NEW;
    END IF;
    PERFORM outbox.place_restored_events();
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER dispatch_state_restore BEFORE INSERT ON outbox.dispatch_state
FOR EACH ROW EXECUTE FUNCTION outbox.restore_dispatch_state();

-- CREATE EXTENSION made the default endpoint's row; a restored one carries
-- its state (enabled or disabled, and why).
CREATE OR REPLACE FUNCTION outbox.restore_default_endpoint()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE outbox.endpoints AS ep
    SET enabled = NEW.enabled, disabled_reason = NEW.disabled_reason, disabled_at = NEW.disabled_at,
        created_at = NEW.created_at, updated_at = NEW.updated_at, failing_since = NEW.failing_since
    WHERE ep.id = 0;
    IF NOT FOUND THEN
        RETURN NEW;
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER endpoints_restore_default BEFORE INSERT ON outbox.endpoints
FOR EACH ROW WHEN (NEW.id = 0) EXECUTE FUNCTION outbox.restore_default_endpoint();
