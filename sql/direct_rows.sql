-- outbox.record(), like the worker, writes outbox.deliveries and
-- outbox.attempts through the executor's row functions, not statements
-- (src/pg/direct_rows.cpp): what a statement would honour is honoured, or
-- refused with an error, never skipped.
\set VERBOSITY terse
TRUNCATE outbox.events, outbox.deliveries, outbox.attempts;
SELECT outbox.enqueue('t.direct', '{"n": 1}') IS NOT NULL;
SELECT outbox.dispatch(100) AS dispatched;
CREATE FUNCTION pg_temp.deliver() RETURNS integer LANGUAGE sql AS $$
    SELECT outbox.record(ARRAY[d.event_id], ARRAY[d.endpoint_id], ARRAY[d.attempts], ARRAY['delivered'],
                         ARRAY[0::bigint], ARRAY[204], ARRAY[NULL::text], ARRAY[1000::bigint], ARRAY[NULL::text])
    FROM outbox.deliveries d
$$;
-- A failed attempt, which outbox.attempts logs (outbox.log_attempts = failures).
CREATE FUNCTION pg_temp.fail() RETURNS integer LANGUAGE sql AS $$
    SELECT outbox.record(ARRAY[d.event_id], ARRAY[d.endpoint_id], ARRAY[d.attempts], ARRAY['pending'],
                         ARRAY[0::bigint], ARRAY[500], ARRAY['HTTP 500'], ARRAY[1000::bigint], ARRAY[NULL::text])
    FROM outbox.deliveries d
$$;

-- A NOT NULL constraint added to a column the row leaves empty.
BEGIN;
UPDATE outbox.deliveries SET last_error = '';
ALTER TABLE outbox.deliveries ALTER COLUMN last_error SET NOT NULL;
SELECT pg_temp.deliver();
ROLLBACK;
BEGIN;
ALTER TABLE outbox.attempts ALTER COLUMN response SET NOT NULL;
SELECT pg_temp.fail();
ROLLBACK;
-- A CHECK constraint added by hand is evaluated.
BEGIN;
ALTER TABLE outbox.deliveries ADD CONSTRAINT regress_not_delivered CHECK (state <> 'delivered');
SELECT pg_temp.deliver();
ROLLBACK;

-- Triggers and rules would not run: the table is refused.
BEGIN;
CREATE FUNCTION pg_temp.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER regress_noop BEFORE UPDATE ON outbox.deliveries FOR EACH ROW EXECUTE FUNCTION pg_temp.noop();
SELECT pg_temp.deliver();
ROLLBACK;
BEGIN;
CREATE RULE regress_also AS ON UPDATE TO outbox.deliveries DO ALSO NOTIFY regress_also;
SELECT pg_temp.deliver();
ROLLBACK;

-- A publication of updates needs a replica identity, as UPDATE says.
BEGIN;
SET LOCAL client_min_messages = error;  -- wal_level's warning
CREATE PUBLICATION regress_deliveries FOR TABLE outbox.deliveries;
ALTER TABLE outbox.deliveries REPLICA IDENTITY NOTHING;
SELECT pg_temp.deliver();
ROLLBACK;

-- A role allowed to call outbox.record() still needs the table privileges
-- (record is not SECURITY DEFINER, as in 0.2.0).
BEGIN;
CREATE ROLE regress_relay;
GRANT USAGE ON SCHEMA outbox TO regress_relay;
GRANT EXECUTE ON FUNCTION outbox.record(uuid[], integer[], integer[], text[], bigint[], integer[], text[], bigint[],
                                        text[], bigint[], jsonb[]) TO regress_relay;
GRANT SELECT ON outbox.deliveries TO regress_relay;
SET LOCAL ROLE regress_relay;
SELECT outbox.record(ARRAY[d.event_id], ARRAY[d.endpoint_id], ARRAY[d.attempts], ARRAY['delivered'],
                     ARRAY[0::bigint], ARRAY[204], ARRAY[NULL::text], ARRAY[1000::bigint], ARRAY[NULL::text])
FROM outbox.deliveries d;
ROLLBACK;

-- Nothing was written by the refused calls; with the table as created, it is.
SELECT state, attempts FROM outbox.deliveries;
SELECT pg_temp.deliver() AS recorded;
SELECT state, last_status, finished_at IS NOT NULL AS finished FROM outbox.deliveries;
SELECT count(*) AS attempts_logged FROM outbox.attempts;
