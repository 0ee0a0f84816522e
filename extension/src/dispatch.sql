-- Whether a topic matches any of an endpoint's patterns: an exact topic, a
-- prefix ending in '*' ('order.*'), or '*'.
CREATE OR REPLACE FUNCTION outbox.topic_matches(patterns text[], topic text)
RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outbox_topic_matches';

-- Creates the deliveries of up to max_events events that became visible
-- since the last call: one for each enabled endpoint whose topic patterns
-- match, the default endpoint (0) only when include_default (the worker
-- passes whether outbox.url is set). Called by the worker; returns the number
-- of events dispatched, or -1 when another caller is dispatching just then. With no endpoint to deliver to, events wait. An event is new when
-- its transaction is visible now but was not in done_snapshot: it was in
-- progress then (done_snapshot's xip list) or started after it (txid >= its
-- xmax). Both are index lookups, so a long-running transaction does not make
-- dispatch rescan old events.
--
-- Each batch must read the events index in order from the cursor and stop
-- after max_events. Before outbox.events is analyzed, the planner takes a
-- range of it for a few thousand rows and prefers a bitmap scan of the whole
-- range and a sort: each batch then read the whole backlog (40 ms per
-- thousand events at 100,000 pending, quadratic in all). Bitmap scans are
-- off for this function, which leaves the ordered index scan.
--
-- dispatch_and_lease() is the worker's form: it also leases, as claim()
-- would, up to lease_limits[i] of the deliveries it makes for endpoint
-- lease_endpoints[i] that are due at once (not parked behind their key),
-- for lease_ms, counting the attempt; their ids come back in leased_events
-- and leased_endpoints (outbox.claimed() reads them). Made leased, a
-- delivery costs one row version less than made and then claimed: the row
-- and index entries a claim's UPDATE writes, and its WAL.
CREATE OR REPLACE FUNCTION outbox.dispatch_and_lease(
    max_events integer, include_default boolean, lease_ms bigint,
    lease_endpoints integer[], lease_limits integer[],
    OUT dispatched integer, OUT leased_events uuid[], OUT leased_endpoints integer[])
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off
AS $$
DECLARE
    state     outbox.dispatch_state;
    last_txid xid8;
    last_seq  bigint;
    from_txid xid8;
    from_seq  bigint;
    n         integer;
    first_filter_errors text[];
BEGIN
    dispatched := 0;
    IF NOT EXISTS (SELECT 1 FROM outbox.endpoints AS ep
                   WHERE ep.enabled AND (ep.id <> 0 OR include_default)) THEN
        RETURN;
    END IF;
    -- Nothing new since the last pass (most calls at a moderate rate come
    -- after another worker's pass): return without locking or writing the
    -- state, which would cost a WAL record each time. Without a pass under
    -- way, leaving done_snapshot as it is changes nothing: the next pass
    -- looks for the same transactions.
    SELECT * INTO state FROM outbox.dispatch_state;
    IF state.target_snapshot IS NULL AND state.restored_at IS NULL AND state.done_snapshot IS NOT NULL
       -- No event from a transaction at or after the done snapshot's xmax
       -- (one probe at the end of events_dispatch), and none of the
       -- transactions it saw in progress has finished since.
       AND coalesce((SELECT max(e.txid) FROM outbox.events AS e) < pg_snapshot_xmax(state.done_snapshot), true)
       AND NOT EXISTS (SELECT 1 FROM pg_snapshot_xip(state.done_snapshot) AS x(txid)
                       WHERE pg_visible_in_snapshot(x.txid, pg_current_snapshot())) THEN
        RETURN;
    END IF;
    SELECT * INTO state FROM outbox.dispatch_state FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        dispatched := -1;  -- another worker is dispatching: what it does not see, a next call will
        RETURN;
    END IF;
    IF state.restored_at IS NOT NULL THEN
        -- Restored events that arrived before the dumped dispatch state
        -- (see restore.sql). An index probe that finds nothing, mostly.
        PERFORM outbox.place_restored_events();
    END IF;
    IF state.target_snapshot IS NULL THEN
        state.target_snapshot := pg_current_snapshot();
        state.cursor_txid := '0'::xid8;
        state.cursor_seq := 0;
    END IF;
    -- Where the scan of new transactions starts: after the cursor, but not
    -- before the done snapshot's xmax. One row comparison, so that the
    -- B-tree starts there; with a separate "txid >= xmax" bound it would
    -- start at xmax and filter its way to the cursor, O(backlog) per call.
    from_txid := state.cursor_txid;
    from_seq := state.cursor_seq;
    IF state.done_snapshot IS NOT NULL
       AND (from_txid, from_seq) < (pg_snapshot_xmax(state.done_snapshot), 0::bigint) THEN
        from_txid := pg_snapshot_xmax(state.done_snapshot);
        from_seq := 0;  -- seq starts at 1: "> (xmax, 0)" is "txid >= xmax"
    END IF;

    WITH candidates AS (
        (SELECT e.id, e.seq, e.txid, e.key, e.topic,
                CASE WHEN e.topic LIKE 'outbox.%' THEN e.payload->>'endpoint' END AS about
         FROM outbox.events AS e
         WHERE state.done_snapshot IS NOT NULL
           AND e.txid = ANY (ARRAY(SELECT pg_snapshot_xip(state.done_snapshot)))
           AND (e.txid, e.seq) > (state.cursor_txid, state.cursor_seq)
           AND pg_visible_in_snapshot(e.txid, state.target_snapshot)
         ORDER BY e.txid, e.seq
         LIMIT max_events)
        UNION ALL
        (SELECT e.id, e.seq, e.txid, e.key, e.topic,
                CASE WHEN e.topic LIKE 'outbox.%' THEN e.payload->>'endpoint' END AS about
         FROM outbox.events AS e
         WHERE (e.txid, e.seq) > (from_txid, from_seq)
           AND e.txid < pg_snapshot_xmax(state.target_snapshot)
           AND pg_visible_in_snapshot(e.txid, state.target_snapshot)
         ORDER BY e.txid, e.seq
         LIMIT max_events)
    ), batch AS (
        SELECT * FROM candidates ORDER BY txid, seq LIMIT max_events
    ), routed AS (
        -- Each event to every enabled endpoint whose topic patterns match,
        -- and whose filter it passes (pass NULL: the filter failed on it).
        -- The payload is read only for an endpoint with a filter, not
        -- carried through the batch for all.
        SELECT b.id, ep.id AS endpoint_id, b.seq, b.key,
               CASE WHEN ep.filter IS NULL THEN true
                    ELSE jsonb_path_match((SELECT e.payload FROM outbox.events AS e WHERE e.id = b.id),
                                          ep.filter, '{}', true) END AS pass
        FROM batch AS b
        JOIN outbox.endpoints AS ep
          ON ep.enabled
         AND (ep.id <> 0 OR include_default)
         AND outbox.topic_matches(ep.topics, b.topic)
         -- An operational event is not sent to the endpoint it is about.
         AND (b.about IS NULL OR b.about <> ep.name)
    ), inserted AS (
        -- A keyed delivery behind an earlier pending one of its key (in
        -- this batch or already queued) is parked: next_attempt_at
        -- 'infinity' keeps it out of the claim's scan until recording its
        -- predecessor's outcome moves it up (outbox.record). Claims still
        -- check the order themselves; parking only keeps them cheap.
        -- The first of each endpoint's due ones (in seq order) are leased,
        -- as many as lease_limits allows.
        INSERT INTO outbox.deliveries (event_id, endpoint_id, seq, key, next_attempt_at, attempts, last_attempt_at)
        SELECT q.id, q.endpoint_id, q.seq, q.key,
               CASE WHEN q.parked THEN 'infinity'::timestamptz
                    WHEN q.leased THEN now() + lease_ms * interval '1 millisecond'
                    ELSE now() END,
               CASE WHEN q.leased THEN 1 ELSE 0 END,
               CASE WHEN q.leased THEN now() END
        FROM (SELECT p.*,
                     NOT p.parked AND row_number() OVER (PARTITION BY p.endpoint_id, p.parked ORDER BY p.seq)
                                      <= coalesce(l.lim, 0) AS leased
              FROM (SELECT m.id, m.endpoint_id, m.seq, m.key,
                           m.key IS NOT NULL
                           AND (m.nth_of_key > 1
                                OR EXISTS (SELECT 1 FROM outbox.deliveries AS p
                                           WHERE p.state = 'pending' AND p.endpoint_id = m.endpoint_id
                                             AND p.key = m.key AND p.seq < m.seq)) AS parked
                    FROM (SELECT r.id, r.endpoint_id, r.seq, r.key,
                                 row_number() OVER (PARTITION BY r.endpoint_id, r.key ORDER BY r.seq) AS nth_of_key
                          FROM routed AS r
                          WHERE r.pass) AS m) AS p
              LEFT JOIN unnest(lease_endpoints, lease_limits) AS l(endpoint_id, lim)
                ON l.endpoint_id = p.endpoint_id) AS q
        ON CONFLICT DO NOTHING
        RETURNING event_id, endpoint_id, attempts
    ), filter_failed AS (
        -- A filter that fails on an event (a string compared with a number,
        -- say) is no match; counted per endpoint, logged the first time.
        UPDATE outbox.endpoints AS ep
        SET filter_errors = ep.filter_errors + f.n
        FROM (SELECT r.endpoint_id, count(*) AS n FROM routed AS r WHERE r.pass IS NULL GROUP BY 1) AS f
        WHERE ep.id = f.endpoint_id
        RETURNING ep.name, ep.filter, ep.filter_errors = f.n AS first
    )
    SELECT count(*),
           (array_agg(b.txid ORDER BY b.txid DESC, b.seq DESC))[1],
           (array_agg(b.seq ORDER BY b.txid DESC, b.seq DESC))[1],
           (SELECT array_agg(format('"%s" (%s)', f.name, f.filter)) FROM filter_failed AS f WHERE f.first),
           (SELECT array_agg(i.event_id) FROM inserted AS i WHERE i.attempts = 1),
           (SELECT array_agg(i.endpoint_id) FROM inserted AS i WHERE i.attempts = 1)
    INTO n, last_txid, last_seq, first_filter_errors, leased_events, leased_endpoints
    FROM batch AS b;

    IF first_filter_errors IS NOT NULL THEN
        RAISE LOG 'outbox: the filter of endpoint % failed on an event; such events are not delivered there',
            array_to_string(first_filter_errors, ', ')
            USING DETAIL = 'A filter that cannot be evaluated on a payload counts as no match. '
                           'outbox.endpoint_status.filter_errors counts them.';
    END IF;

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
    dispatched := n;
END
$$;

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
