-- enqueue() validates, writes the event, and arranges for the workers to be
-- woken at commit. Writers may enqueue without having any privilege on the
-- tables: the function writes as the extension's owner. It is SECURITY
-- INVOKER all the same, so that a callback it names (on_result) is checked
-- for, and will run as, the caller (src/pg/callback_name.hpp).
CREATE OR REPLACE FUNCTION outbox.enqueue(topic text, payload jsonb, key text DEFAULT NULL,
                               headers jsonb DEFAULT NULL, event_id uuid DEFAULT NULL,
                               on_result text DEFAULT NULL)
RETURNS uuid
LANGUAGE c VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outbox_enqueue';

COMMENT ON FUNCTION outbox.enqueue(text, jsonb, text, jsonb, uuid, text) IS
    'Enqueue an event in the current transaction; returns its id (the webhook-id)';

-- Claims up to max_rows due deliveries of one endpoint for sending: locks
-- them (FOR UPDATE SKIP LOCKED, so concurrent claimers never get the same
-- row), leases them for lease_ms (next_attempt_at moves forward, so they
-- come back by themselves if the claimer dies) and counts the attempt. A
-- keyed delivery is claimed only when no earlier delivery of the same key
-- and endpoint is still pending. The worker claims with the same statements
-- (src/pg/queue_claim.cpp); so can an external relay that shares the table,
-- through this function. The partial index deliveries_due serves the scan
-- and deliveries_key_order the per-key test, so the cost does not grow with
-- the backlog.
--
-- With followers > 0, each keyed delivery claimed brings up to that many
-- (in all, shared among the keys) of the deliveries that follow it in its
-- key, leased and counted alike: a key's pipeline. The caller must send
-- them one after another, each only once the one before it succeeded (or
-- died); at the first that will be retried, the rest wait for their lease
-- (the worker hands them back at once, parked). Rows come in seq order; key
-- says which pipeline a row belongs to, and a key's first row is its head.
--
-- These functions plan their statements as the worker does: by index, never
-- a sequential or bitmap scan (src/pg/worker.cpp says why).
CREATE OR REPLACE FUNCTION outbox.claim(endpoint_id integer, max_rows integer, lease_ms bigint,
                                        followers integer DEFAULT 0)
RETURNS TABLE (event_id uuid, attempt integer, topic text, payload text, header_lines text,
               created_at timestamptz, key text, seq bigint)
LANGUAGE c
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET enable_bitmapscan = off
AS 'MODULE_PATHNAME', 'outbox_claim';

-- Writes the outcome of finished attempts (the worker's batch, as parallel
-- arrays) and moves up the next delivery of each key whose head is now
-- delivered or dead. A result whose attempt number no longer matches (the
-- lease ran out and another claimer took the delivery) is ignored. Each
-- attempt is also logged in outbox.attempts as outbox.log_attempts says
-- (started_at_us: when its request started, unix microseconds; NULL: now),
-- each delivery that died is announced (outbox.delivery.dead), and an
-- endpoint whose every attempt has failed for its disable_after is disabled.
-- A delivery that ends calls its callback (README, "Callbacks") in this
-- transaction, as the worker's would; response_headers (jsonb objects) are
-- what it gets as the response's headers. A key whose predecessor's
-- callback failed stays parked until the callback is done or dead (the
-- worker calls it again). The worker's own code (src/pg/queue_results.cpp).
CREATE OR REPLACE FUNCTION outbox.record(event_ids uuid[], endpoint_ids integer[], attempts integer[],
                              states text[], retry_in_ms bigint[], statuses integer[],
                              errors text[], durations_us bigint[], responses text[],
                              started_at_us bigint[] DEFAULT NULL, response_headers jsonb[] DEFAULT NULL)
RETURNS integer
LANGUAGE c
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET enable_bitmapscan = off
AS 'MODULE_PATHNAME', 'outbox_record';

-- Moves up parked deliveries that head their key. Recording normally does
-- this; this sweep (run by the worker every few seconds) covers a head
-- finished while its follower was being dispatched. A skip scan: one index
-- descent per (endpoint, key), however long the backlog.
CREATE OR REPLACE FUNCTION outbox.unpark_heads()
RETURNS integer
LANGUAGE c
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET enable_bitmapscan = off
AS 'MODULE_PATHNAME', 'outbox_unpark_heads';
