-- Whether a topic matches any of an endpoint's patterns: an exact topic, a
-- prefix ending in '*' ('order.*'), or '*'.
CREATE OR REPLACE FUNCTION outbox.topic_matches(patterns text[], topic text)
RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outbox_topic_matches';

-- Creates the deliveries of up to max_events events that became visible
-- since the last call: one for each enabled endpoint whose topic patterns
-- match (and whose filter passes), the default endpoint (0) only when
-- include_default (the worker passes whether outbox.url is set). Returns
-- the number of events dispatched, or -1 when another caller is
-- dispatching just then. With no endpoint to deliver to, events wait. An
-- event is new when its transaction is visible now but was not in
-- done_snapshot: it was in progress then (done_snapshot's xip list) or
-- started after it (txid >= its xmax). Both are index lookups, so a
-- long-running transaction does not make dispatch rescan old events.
--
-- dispatch_and_lease() is the worker's form: it also leases, as claim()
-- would, up to lease_limits[i] of the deliveries it makes for endpoint
-- lease_endpoints[i] that are due at once (not parked behind their key),
-- for lease_ms, counting the attempt; their ids come back in leased_events
-- and leased_endpoints (outbox.claimed() reads them). Made leased, a
-- delivery costs one row version less than made and then claimed: the row
-- and index entries a claim's UPDATE writes, and its WAL. The worker's own
-- statements (src/pg/queue_dispatch.cpp).
CREATE OR REPLACE FUNCTION outbox.dispatch_and_lease(
    max_events integer, include_default boolean, lease_ms bigint,
    lease_endpoints integer[], lease_limits integer[],
    OUT dispatched integer, OUT leased_events uuid[], OUT leased_endpoints integer[])
LANGUAGE c
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET enable_bitmapscan = off
AS 'MODULE_PATHNAME', 'outbox_dispatch_and_lease';

CREATE OR REPLACE FUNCTION outbox.dispatch(max_events integer, include_default boolean DEFAULT true)
RETURNS integer
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.dispatched FROM outbox.dispatch_and_lease(max_events, include_default, 0, '{}', '{}') AS d
$$;

-- The deliveries dispatch_and_lease() leased, as claim() returns them (with
-- their endpoint), in seq order.
CREATE OR REPLACE FUNCTION outbox.claimed(event_ids uuid[], endpoint_ids integer[])
RETURNS TABLE (event_id uuid, attempt integer, topic text, payload text, header_lines text,
               created_at timestamptz, key text, seq bigint, endpoint_id integer)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.event_id, d.attempts, e.topic, e.payload::text,
           (SELECT string_agg(h.key || ': ' || h.value, E'\n') FROM jsonb_each_text(e.headers) AS h),
           d.created_at, d.key, d.seq, d.endpoint_id
    FROM unnest(event_ids, endpoint_ids) AS x(event_id, endpoint_id)
    JOIN outbox.deliveries AS d ON d.event_id = x.event_id AND d.endpoint_id = x.endpoint_id
    JOIN outbox.events AS e ON e.id = x.event_id
    ORDER BY d.seq
$$;
