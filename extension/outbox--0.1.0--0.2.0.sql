-- outbox 0.1.0 -> 0.2.0: how the tables change. The functions, triggers,
-- views and grants of 0.2.0 follow this part (extension/src/*.sql, created
-- or replaced).
\echo Use "ALTER EXTENSION outbox UPDATE" to load this file. \quit

-- Backup and restore (restore.sql): the dumped database's dispatch state.
ALTER TABLE outbox.dispatch_state
    ADD COLUMN restored_at timestamptz,
    ADD COLUMN restored_done_snapshot pg_snapshot,
    ADD COLUMN restored_target_snapshot pg_snapshot,
    ADD COLUMN restored_cursor_txid xid8,
    ADD COLUMN restored_cursor_seq bigint;

-- Operations (operations.sql): failing endpoints, the attempt history.
ALTER TABLE outbox.endpoints ADD COLUMN failing_since timestamptz;

CREATE TABLE outbox.attempts (
    event_id    uuid        NOT NULL,
    endpoint_id integer     NOT NULL,
    attempt     integer     NOT NULL,
    started_at  timestamptz NOT NULL,
    duration    interval,
    status      integer,     -- NULL: no HTTP response
    error       text,
    response    text,        -- the first 4 kB of the response body
    PRIMARY KEY (event_id, endpoint_id, attempt)
) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05);
CREATE INDEX attempts_started ON outbox.attempts (started_at);

-- claim() returns when each delivery was made (for commit-to-2xx latency);
-- record() takes when each attempt started (for the history).
DROP FUNCTION outbox.claim(integer, integer, bigint);
DROP FUNCTION outbox.record(uuid[], integer[], integer[], text[], bigint[], integer[], text[], bigint[], text[]);

-- Per-endpoint control (endpoints.sql, dispatch.sql, delivery.sql).
ALTER TABLE outbox.endpoints
    ADD COLUMN rate_limit double precision CHECK (rate_limit > 0),
    ADD COLUMN max_in_flight integer CHECK (max_in_flight BETWEEN 1 AND 10000),
    ADD COLUMN max_attempts integer CHECK (max_attempts BETWEEN 1 AND 1000),
    ADD COLUMN retry_base interval CHECK (retry_base > interval '0'),
    ADD COLUMN retry_max interval CHECK (retry_max > interval '0'),
    ADD COLUMN filter jsonpath,
    ADD COLUMN filter_errors bigint NOT NULL DEFAULT 0,
    ADD COLUMN disable_after interval DEFAULT '5 days' CHECK (disable_after > interval '0');
DROP FUNCTION outbox.create_endpoint(text, text, text[], text, jsonb, interval);
DROP FUNCTION outbox.alter_endpoint(text, text, text[], jsonb, interval);
DROP FUNCTION outbox.redrive(text, timestamptz);

-- Idempotency keys (idempotency.sql).
CREATE TABLE outbox.idempotency_keys (
    key          text        NOT NULL PRIMARY KEY,
    fingerprint  text,
    response     jsonb,
    holder_txid  xid8        NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    completed_at timestamptz,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX idempotency_keys_expiry ON outbox.idempotency_keys (expires_at);

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

-- enqueue() validates, writes the event, and arranges for the workers to be
-- woken at commit. SECURITY DEFINER: writers may enqueue
-- without having any privilege on the tables.
CREATE OR REPLACE FUNCTION outbox.enqueue(topic text, payload jsonb, key text DEFAULT NULL,
                               headers jsonb DEFAULT NULL, event_id uuid DEFAULT NULL)
RETURNS uuid
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outbox_enqueue';

COMMENT ON FUNCTION outbox.enqueue(text, jsonb, text, jsonb, uuid) IS
    'Enqueue an event in the current transaction; returns its id (the webhook-id)';

-- Claims up to max_rows due deliveries of one endpoint for sending: locks
-- them (FOR UPDATE SKIP LOCKED, so concurrent claimers never get the same
-- row), leases them for lease_ms (next_attempt_at moves forward, so they
-- come back by themselves if the claimer dies) and counts the attempt. A
-- keyed delivery is claimed only when no earlier delivery of the same key
-- and endpoint is still pending. The worker calls this; so can an external
-- relay that shares the table. The partial index deliveries_due serves the
-- scan and deliveries_key_order the per-key test, so the cost does not grow
-- with the backlog.
--
-- With followers > 0, each keyed delivery claimed brings up to that many
-- (in all, shared among the keys) of the deliveries that follow it in its
-- key, leased and counted alike: a key's pipeline. The caller must send
-- them one after another, each only once the one before it succeeded (or
-- died); at the first that will be retried, the rest wait for their lease
-- (the worker hands them back at once, parked). Rows come in seq order; key
-- says which pipeline a row belongs to, and a key's first row is its head.
CREATE OR REPLACE FUNCTION outbox.claim(endpoint_id integer, max_rows integer, lease_ms bigint,
                                        followers integer DEFAULT 0)
RETURNS TABLE (event_id uuid, attempt integer, topic text, payload text, header_lines text,
               created_at timestamptz, key text, seq bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    heads uuid[];
    head_keys text[];
    head_seqs bigint[];
    chained uuid[];
    per_key integer;
BEGIN
    SELECT array_agg(d.event_id), array_agg(d.key), array_agg(d.seq)
    INTO heads, head_keys, head_seqs
    FROM (SELECT d.event_id, d.key, d.seq
          FROM outbox.deliveries AS d
          WHERE d.state = 'pending'
            AND d.endpoint_id = claim.endpoint_id
            AND d.next_attempt_at <= now()
            AND (d.key IS NULL OR NOT EXISTS (
                  SELECT 1
                  FROM outbox.deliveries AS earlier
                  WHERE earlier.state = 'pending'
                    AND earlier.endpoint_id = d.endpoint_id
                    AND earlier.key = d.key
                    AND earlier.seq < d.seq))
            -- A restore loads deliveries before their events: leave them
            -- until the events are there.
            AND EXISTS (SELECT 1 FROM outbox.events AS e WHERE e.id = d.event_id)
          ORDER BY d.next_attempt_at, d.seq
          LIMIT max_rows
          FOR UPDATE SKIP LOCKED) AS d;
    IF heads IS NULL THEN
        RETURN;
    END IF;

    IF followers > 0 THEN
        per_key := followers / greatest(1, cardinality(array_remove(head_keys, NULL)));
    END IF;
    IF per_key > 0 THEN
        -- Each keyed head's next deliveries in seq order, read first and
        -- locked afterwards: a pipeline must have no gap, so it ends before
        -- the first row another transaction holds (SKIP LOCKED alone would
        -- step over it and send its successor first).
        WITH next AS MATERIALIZED (
            SELECT h.event_id AS head, n.event_id, n.seq
            FROM unnest(heads, head_keys, head_seqs) AS h(event_id, key, seq),
                 LATERAL (SELECT n.event_id, n.seq
                          FROM outbox.deliveries AS n
                          WHERE n.state = 'pending'
                            AND n.endpoint_id = claim.endpoint_id
                            AND n.key = h.key
                            AND n.seq > h.seq
                            AND EXISTS (SELECT 1 FROM outbox.events AS e WHERE e.id = n.event_id)
                          ORDER BY n.seq
                          LIMIT per_key) AS n
            WHERE h.key IS NOT NULL
        ), locked AS MATERIALIZED (
            SELECT d.event_id
            FROM outbox.deliveries AS d
            WHERE d.endpoint_id = claim.endpoint_id
              AND d.event_id IN (SELECT next.event_id FROM next)
              AND d.finished_at IS NULL  -- still pending once locked
            FOR UPDATE SKIP LOCKED
        ), gaps AS (
            -- Per head, the first of its followers that could not be locked.
            SELECT n.head, min(n.seq) AS seq
            FROM next AS n
            LEFT JOIN locked AS l ON l.event_id = n.event_id
            WHERE l.event_id IS NULL
            GROUP BY n.head
        )
        SELECT array_agg(n.event_id) INTO chained
        FROM next AS n
        LEFT JOIN gaps AS g ON g.head = n.head
        WHERE g.seq IS NULL OR n.seq < g.seq;
    END IF;

    RETURN QUERY
    WITH leased AS (
        UPDATE outbox.deliveries AS d
        SET attempts = d.attempts + 1,
            next_attempt_at = now() + lease_ms * interval '1 millisecond',
            last_attempt_at = now()
        WHERE d.endpoint_id = claim.endpoint_id
          AND d.event_id = ANY (heads || coalesce(chained, '{}'))
        RETURNING d.event_id, d.attempts, d.seq, d.key, d.created_at
    )
    SELECT l.event_id, l.attempts, e.topic, e.payload::text,
           (SELECT string_agg(h.key || ': ' || h.value, E'\n')
            FROM jsonb_each_text(e.headers) AS h),
           l.created_at, l.key, l.seq
    FROM leased AS l
    JOIN outbox.events AS e ON e.id = l.event_id
    ORDER BY l.seq;
END
$$;

-- Writes the outcome of finished attempts (the worker's batch, as parallel
-- arrays) and moves up the next delivery of each key whose head is now
-- delivered or dead. A result whose attempt number no longer matches (the
-- lease ran out and another claimer took the delivery) is ignored. Each
-- attempt is also logged in outbox.attempts as outbox.log_attempts says
-- (started_at_us: when its request started, unix microseconds; NULL: now),
-- and each delivery that died is announced (outbox.delivery.dead).
CREATE OR REPLACE FUNCTION outbox.record(event_ids uuid[], endpoint_ids integer[], attempts integer[],
                              states text[], retry_in_ms bigint[], statuses integer[],
                              errors text[], durations_us bigint[], responses text[],
                              started_at_us bigint[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    log_mode text := coalesce(current_setting('outbox.log_attempts', true), 'failures');
    done_endpoints integer[];
    done_keys text[];
    dead_events uuid[];
    dead_endpoints integer[];
    failed_endpoints integer[];
    next_events uuid[];
    next_endpoints integer[];
    recorded integer;
BEGIN
    WITH r AS (
        SELECT * FROM unnest(event_ids, endpoint_ids, attempts, states, retry_in_ms, statuses, errors,
                             durations_us, responses, started_at_us)
                      AS r(event_id, endpoint_id, attempt, state, retry_in_ms, status, error, duration_us, response,
                           started_at_us)
    ), updated AS (
        UPDATE outbox.deliveries AS d
        SET state = r.state,
            next_attempt_at = CASE WHEN r.state = 'pending'
                                   THEN now() + r.retry_in_ms * interval '1 millisecond'
                                   ELSE d.next_attempt_at END,
            last_status = NULLIF(r.status, 0),
            last_error = r.error,
            last_duration = r.duration_us * interval '1 microsecond',
            last_response = r.response,
            finished_at = CASE WHEN r.state = 'pending' THEN NULL ELSE now() END
        FROM r
        WHERE d.event_id = r.event_id
          AND d.endpoint_id = r.endpoint_id
          AND d.attempts = r.attempt
          -- "Still pending", said without "state = 'pending'": that would
          -- make the partial indexes usable here, and a plan that scans
          -- deliveries_due for each result (chosen while the table was
          -- small) costs O(backlog) per row. Only the primary key fits.
          AND d.finished_at IS NULL
        RETURNING d.event_id, d.endpoint_id, d.key, d.state, d.attempts, r.status, r.error, r.duration_us,
                  r.response, r.started_at_us
    ), logged AS (
        INSERT INTO outbox.attempts (event_id, endpoint_id, attempt, started_at, duration, status, error, response)
        SELECT u.event_id, u.endpoint_id, u.attempts,
               coalesce(to_timestamp(u.started_at_us / 1000000.0), now()),
               u.duration_us * interval '1 microsecond', NULLIF(u.status, 0), u.error, u.response
        FROM updated AS u
        WHERE log_mode = 'all' OR (log_mode = 'failures' AND u.state <> 'delivered')
    )
    SELECT count(*)::integer,
           array_agg(u.endpoint_id) FILTER (WHERE u.key IS NOT NULL AND u.state <> 'pending'),
           array_agg(u.key) FILTER (WHERE u.key IS NOT NULL AND u.state <> 'pending'),
           array_agg(u.event_id) FILTER (WHERE u.state = 'dead'),
           array_agg(u.endpoint_id) FILTER (WHERE u.state = 'dead'),
           array_agg(DISTINCT u.endpoint_id) FILTER (WHERE u.status NOT BETWEEN 200 AND 299 OR u.status IS NULL)
    INTO recorded, done_endpoints, done_keys, dead_events, dead_endpoints, failed_endpoints
    FROM updated AS u;

    -- The next pending delivery of each finished key may go now, if it is
    -- parked. (A new statement, so it sees the rows just finished.) Found
    -- first, one index descent per key, then updated by primary key: as one
    -- join, a plan made before the table was analyzed (every parked row
    -- looks rare then) scanned the whole table once per key, seconds per
    -- batch behind a hot key. "NOT isfinite()" rather than "= 'infinity'"
    -- keeps that estimate from making a sequential scan look cheap here.
    SELECT array_agg(nxt.event_id), array_agg(f.endpoint_id)
    INTO next_events, next_endpoints
    FROM (SELECT DISTINCT f.endpoint_id, f.key FROM unnest(done_endpoints, done_keys) AS f(endpoint_id, key)) AS f,
         LATERAL (SELECT n.event_id, n.next_attempt_at FROM outbox.deliveries AS n
                  WHERE n.state = 'pending' AND n.endpoint_id = f.endpoint_id AND n.key = f.key
                  ORDER BY n.seq LIMIT 1) AS nxt
    WHERE nxt.next_attempt_at = 'infinity';
    IF next_events IS NOT NULL THEN
        UPDATE outbox.deliveries AS d
        SET next_attempt_at = now()
        FROM unnest(next_events, next_endpoints) AS x(event_id, endpoint_id)
        WHERE d.event_id = x.event_id AND d.endpoint_id = x.endpoint_id
          AND NOT isfinite(d.next_attempt_at);
    END IF;

    -- A dead operational event is not announced again: that could go round.
    IF dead_events IS NOT NULL THEN
        PERFORM outbox.emit('outbox.delivery.dead', jsonb_build_object(
                    'event_id', e.id, 'endpoint', ep.name, 'topic', e.topic, 'key', e.key,
                    'attempts', d.attempts, 'last_status', d.last_status, 'last_error', d.last_error))
        FROM unnest(dead_events, dead_endpoints) AS x(event_id, endpoint_id)
        JOIN outbox.deliveries AS d ON d.event_id = x.event_id AND d.endpoint_id = x.endpoint_id
        JOIN outbox.events AS e ON e.id = x.event_id
        JOIN outbox.endpoints AS ep ON ep.id = x.endpoint_id
        WHERE e.topic NOT LIKE 'outbox.%';
    END IF;

    -- An endpoint whose every attempt has failed for its disable_after (it
    -- is failing since then: outbox.note_endpoint_health) is disabled; its
    -- deliveries wait until outbox.enable_endpoint().
    IF failed_endpoints IS NOT NULL THEN
        UPDATE outbox.endpoints AS ep
        SET enabled = false, disabled_at = now(), updated_at = now(),
            disabled_reason = format('every attempt has failed since %s (disable_after %s)',
                                     ep.failing_since, ep.disable_after)
        WHERE ep.id = ANY (failed_endpoints) AND ep.enabled AND ep.failing_since < now() - ep.disable_after;
    END IF;
    RETURN recorded;
END
$$;

-- Moves up parked deliveries that head their key. Recording normally does
-- this; this sweep (run by the worker every few seconds) covers a head
-- finished while its follower was being dispatched. A skip scan: one index
-- descent per (endpoint, key), however long the backlog.
CREATE OR REPLACE FUNCTION outbox.unpark_heads()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parked_events uuid[];
    parked_endpoints integer[];
    moved integer;
BEGIN
    WITH RECURSIVE heads AS (
        (SELECT d.endpoint_id, d.key, d.seq, d.event_id, d.next_attempt_at FROM outbox.deliveries AS d
         WHERE d.state = 'pending' AND d.key IS NOT NULL
         ORDER BY d.endpoint_id, d.key, d.seq LIMIT 1)
        UNION ALL
        SELECT n.endpoint_id, n.key, n.seq, n.event_id, n.next_attempt_at
        FROM heads AS h,
             LATERAL (SELECT d.endpoint_id, d.key, d.seq, d.event_id, d.next_attempt_at
                      FROM outbox.deliveries AS d
                      WHERE d.state = 'pending' AND d.key IS NOT NULL
                        AND (d.endpoint_id, d.key) > (h.endpoint_id, h.key)
                      ORDER BY d.endpoint_id, d.key, d.seq LIMIT 1) AS n
    )
    SELECT array_agg(h.event_id), array_agg(h.endpoint_id)
    INTO parked_events, parked_endpoints
    FROM heads AS h
    WHERE h.next_attempt_at = 'infinity';
    IF parked_events IS NULL THEN
        RETURN 0;
    END IF;
    -- By primary key, for the reason given in outbox.record().
    UPDATE outbox.deliveries AS d
    SET next_attempt_at = now()
    FROM unnest(parked_events, parked_endpoints) AS x(event_id, endpoint_id)
    WHERE d.event_id = x.event_id AND d.endpoint_id = x.endpoint_id
      AND d.finished_at IS NULL AND NOT isfinite(d.next_attempt_at);
    GET DIAGNOSTICS moved = ROW_COUNT;
    RETURN moved;
END
$$;

-- Endpoint management. SECURITY DEFINER because they write secrets, which
-- no role may read; EXECUTE is granted to outbox_admin only. Every function
-- validates all its input before it writes anything.

CREATE OR REPLACE FUNCTION outbox.check_endpoint(url text, topics text[], headers jsonb, secret text)
RETURNS void
LANGUAGE c
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outbox_check_endpoint';

-- Broker endpoints (nats://, tls://, amqp://, amqps://, redis://): whether
-- a URL names a broker; the URL without its user:password@, as stored; the
-- credentials in the canonical form of the endpoint's secret (README,
-- "Delivering to a broker"), from the URL or from `secret`, NULL when none.
CREATE OR REPLACE FUNCTION outbox.is_broker_url(url text)
RETURNS boolean
LANGUAGE c IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outbox_is_broker_url';

CREATE OR REPLACE FUNCTION outbox.broker_url(url text)
RETURNS text
LANGUAGE c IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outbox_broker_url';

CREATE OR REPLACE FUNCTION outbox.broker_secret(url text, secret text)
RETURNS text
LANGUAGE c IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outbox_broker_secret';

CREATE OR REPLACE FUNCTION outbox.new_secret()
RETURNS text
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outbox_new_secret';

-- The id of an endpoint by name, or a clear error.
CREATE OR REPLACE FUNCTION outbox.endpoint_id(endpoint_name text, for_update boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_id integer;
BEGIN
    IF endpoint_name IS NULL THEN
        RAISE EXCEPTION 'endpoint name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF for_update THEN
        SELECT ep.id INTO found_id FROM outbox.endpoints AS ep WHERE ep.name = endpoint_name FOR UPDATE;
    ELSE
        SELECT ep.id INTO found_id FROM outbox.endpoints AS ep WHERE ep.name = endpoint_name;
    END IF;
    IF found_id IS NULL THEN
        RAISE EXCEPTION 'endpoint "%" does not exist', endpoint_name
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT name FROM outbox.endpoint_status lists the endpoints.';
    END IF;
    RETURN found_id;
END
$$;

-- Raised for changes that make no sense for the default endpoint, whose URL
-- and secret live in postgresql.conf.
CREATE OR REPLACE FUNCTION outbox.refuse_default(endpoint_id integer, what text, hint text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF endpoint_id = 0 THEN
        RAISE EXCEPTION 'cannot % the default endpoint', what
            USING ERRCODE = 'feature_not_supported', HINT = hint;
    END IF;
END
$$;

-- The delivery policy of one endpoint, checked before anything is written.
-- NULL: unchanged, or the outbox.* setting. A filter must be an SQL/JSON
-- path predicate (it is tried on an empty payload).
CREATE OR REPLACE FUNCTION outbox.check_endpoint_policy(rate_limit double precision, max_in_flight integer,
                                                        max_attempts integer, retry_base interval,
                                                        retry_max interval, filter jsonpath,
                                                        disable_after interval)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF rate_limit <= 0 OR rate_limit = 'Infinity' OR rate_limit = 'NaN' THEN
        RAISE EXCEPTION 'rate_limit must be a positive number of requests per second'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass NULL (reset => ''{rate_limit}'') for no limit.';
    END IF;
    IF max_in_flight NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'max_in_flight must be between 1 and 10000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_attempts NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'max_attempts must be between 1 and 1000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF retry_base <= interval '0' OR retry_max <= interval '0' THEN
        RAISE EXCEPTION 'retry_base and retry_max must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF retry_base > retry_max THEN
        RAISE EXCEPTION 'retry_base (%) must not be longer than retry_max (%)', retry_base, retry_max
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF disable_after < interval '0' THEN
        RAISE EXCEPTION 'disable_after must not be negative' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass interval ''0'' (or NULL to create_endpoint) to never disable the endpoint automatically.';
    END IF;
    IF filter IS NOT NULL THEN
        BEGIN
            PERFORM jsonb_path_match('{}'::jsonb, filter);
        EXCEPTION WHEN data_exception THEN
            RAISE EXCEPTION 'filter % is not a predicate', filter
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('Evaluating it gave: %s', SQLERRM),
                      HINT = 'A filter is an SQL/JSON path predicate on the payload, such as ''$.total > 100'' or ''$.country == "NL"''.';
        END;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION outbox.create_endpoint(name text, url text, topics text[] DEFAULT '{*}',
                                       secret text DEFAULT NULL, headers jsonb DEFAULT NULL,
                                       timeout interval DEFAULT NULL, rate_limit double precision DEFAULT NULL,
                                       max_in_flight integer DEFAULT NULL, max_attempts integer DEFAULT NULL,
                                       retry_base interval DEFAULT NULL, retry_max interval DEFAULT NULL,
                                       filter jsonpath DEFAULT NULL,
                                       disable_after interval DEFAULT '5 days')
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id integer;
    signing_secret text;
    stored_url text;
    broker boolean;
BEGIN
    IF create_endpoint.name IS NULL OR create_endpoint.url IS NULL OR create_endpoint.topics IS NULL THEN
        RAISE EXCEPTION 'name, url and topics must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF create_endpoint.name !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$' THEN
        RAISE EXCEPTION 'invalid endpoint name "%"', left(create_endpoint.name, 64)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'An endpoint name is 1 to 63 letters, digits, ''.'', ''_'' or ''-'', starting with a letter or digit.';
    END IF;
    IF create_endpoint.timeout <= interval '0' THEN
        RAISE EXCEPTION 'timeout must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM outbox.check_endpoint(create_endpoint.url, create_endpoint.topics, create_endpoint.headers,
                                  create_endpoint.secret);
    PERFORM outbox.check_endpoint_policy(create_endpoint.rate_limit, create_endpoint.max_in_flight,
                                         create_endpoint.max_attempts, create_endpoint.retry_base,
                                         create_endpoint.retry_max, create_endpoint.filter,
                                         create_endpoint.disable_after);
    IF EXISTS (SELECT 1 FROM outbox.endpoints AS ep WHERE ep.name = create_endpoint.name) THEN
        RAISE EXCEPTION 'endpoint "%" already exists', create_endpoint.name
            USING ERRCODE = 'duplicate_object', HINT = 'Use outbox.alter_endpoint() to change it.';
    END IF;
    -- A broker endpoint keeps its credentials (from the URL or `secret`) as
    -- its secret, and its URL without them; it signs nothing.
    broker := outbox.is_broker_url(create_endpoint.url);
    IF broker THEN
        stored_url := outbox.broker_url(create_endpoint.url);
        signing_secret := outbox.broker_secret(create_endpoint.url, create_endpoint.secret);
    ELSE
        stored_url := create_endpoint.url;
        signing_secret := COALESCE(create_endpoint.secret, outbox.new_secret());
    END IF;
    INSERT INTO outbox.endpoints (name, url, topics, headers, timeout, rate_limit, max_in_flight, max_attempts,
                                  retry_base, retry_max, filter, disable_after)
    VALUES (create_endpoint.name, stored_url, create_endpoint.topics,
            NULLIF(create_endpoint.headers, '{}'::jsonb), create_endpoint.timeout, create_endpoint.rate_limit,
            create_endpoint.max_in_flight, create_endpoint.max_attempts,
            create_endpoint.retry_base, create_endpoint.retry_max, create_endpoint.filter,
            NULLIF(create_endpoint.disable_after, interval '0'))
    RETURNING id INTO new_id;
    IF signing_secret IS NOT NULL THEN
        INSERT INTO outbox.endpoint_secrets (endpoint_id, secret) VALUES (new_id, signing_secret);
    END IF;
    -- Credentials are never handed back.
    RETURN CASE WHEN broker THEN NULL ELSE signing_secret END;
END
$$;

-- NULL: unchanged. `reset` names settings to put back to their defaults
-- (rate_limit: none; max_in_flight: a fair share; max_attempts, retry_base,
-- retry_max: the outbox.* settings; filter: none; disable_after: 5 days).
-- disable_after => '0' never disables.
CREATE OR REPLACE FUNCTION outbox.alter_endpoint(name text, url text DEFAULT NULL, topics text[] DEFAULT NULL,
                                      headers jsonb DEFAULT NULL, timeout interval DEFAULT NULL,
                                      rate_limit double precision DEFAULT NULL, max_in_flight integer DEFAULT NULL,
                                      max_attempts integer DEFAULT NULL, retry_base interval DEFAULT NULL,
                                      retry_max interval DEFAULT NULL, filter jsonpath DEFAULT NULL,
                                      disable_after interval DEFAULT NULL, reset text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target integer := outbox.endpoint_id(alter_endpoint.name, true);
    resettable constant text[] := '{rate_limit, max_in_flight, max_attempts, retry_base, retry_max, filter,
                                    disable_after}';
    current outbox.endpoints;
    new_url text := alter_endpoint.url;
    credentials text;
BEGIN
    PERFORM outbox.refuse_default(target, 'alter',
        'The default endpoint is configured by outbox.url in postgresql.conf.');
    IF alter_endpoint.timeout <= interval '0' THEN
        RAISE EXCEPTION 'timeout must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (coalesce(alter_endpoint.reset, '{}') <@ resettable) THEN
        RAISE EXCEPTION 'cannot reset %', (SELECT string_agg(r, ', ') FROM unnest(alter_endpoint.reset) AS r
                                           WHERE r IS NULL OR r <> ALL (resettable))
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'reset takes rate_limit, max_in_flight, max_attempts, retry_base, retry_max, filter and disable_after.';
    END IF;
    PERFORM outbox.check_endpoint(alter_endpoint.url, alter_endpoint.topics, alter_endpoint.headers, NULL);
    SELECT * INTO current FROM outbox.endpoints AS ep WHERE ep.id = target;
    -- An HTTP endpoint's secrets are signing keys, a broker's its
    -- credentials: an endpoint stays what it is. New credentials in a broker
    -- URL replace the old ones.
    IF alter_endpoint.url IS NOT NULL THEN
        IF outbox.is_broker_url(alter_endpoint.url) <> outbox.is_broker_url(current.url) THEN
            RAISE EXCEPTION 'cannot change endpoint "%" between HTTP and a message broker', alter_endpoint.name
                USING ERRCODE = 'feature_not_supported',
                      HINT = 'Create a new endpoint with outbox.create_endpoint() and drop this one.';
        END IF;
        IF outbox.is_broker_url(alter_endpoint.url) THEN
            new_url := outbox.broker_url(alter_endpoint.url);
            credentials := outbox.broker_secret(alter_endpoint.url, NULL);
        END IF;
    END IF;
    -- The policy as it will be, checked whole (retry_base against retry_max).
    PERFORM outbox.check_endpoint_policy(
        alter_endpoint.rate_limit, alter_endpoint.max_in_flight,
        coalesce(alter_endpoint.max_attempts, current.max_attempts),
        CASE WHEN 'retry_base' = ANY (alter_endpoint.reset) THEN NULL
             ELSE coalesce(alter_endpoint.retry_base, current.retry_base) END,
        CASE WHEN 'retry_max' = ANY (alter_endpoint.reset) THEN NULL
             ELSE coalesce(alter_endpoint.retry_max, current.retry_max) END,
        alter_endpoint.filter, alter_endpoint.disable_after);
    UPDATE outbox.endpoints AS ep
    SET url = COALESCE(new_url, ep.url),
        topics = COALESCE(alter_endpoint.topics, ep.topics),
        headers = CASE WHEN alter_endpoint.headers IS NULL THEN ep.headers
                       ELSE NULLIF(alter_endpoint.headers, '{}'::jsonb) END,
        timeout = COALESCE(alter_endpoint.timeout, ep.timeout),
        rate_limit = CASE WHEN 'rate_limit' = ANY (alter_endpoint.reset) THEN NULL
                          ELSE COALESCE(alter_endpoint.rate_limit, ep.rate_limit) END,
        max_in_flight = CASE WHEN 'max_in_flight' = ANY (alter_endpoint.reset) THEN NULL
                             ELSE COALESCE(alter_endpoint.max_in_flight, ep.max_in_flight) END,
        max_attempts = CASE WHEN 'max_attempts' = ANY (alter_endpoint.reset) THEN NULL
                            ELSE COALESCE(alter_endpoint.max_attempts, ep.max_attempts) END,
        retry_base = CASE WHEN 'retry_base' = ANY (alter_endpoint.reset) THEN NULL
                          ELSE COALESCE(alter_endpoint.retry_base, ep.retry_base) END,
        retry_max = CASE WHEN 'retry_max' = ANY (alter_endpoint.reset) THEN NULL
                         ELSE COALESCE(alter_endpoint.retry_max, ep.retry_max) END,
        filter = CASE WHEN 'filter' = ANY (alter_endpoint.reset) THEN NULL
                      ELSE COALESCE(alter_endpoint.filter, ep.filter) END,
        filter_errors = CASE WHEN 'filter' = ANY (alter_endpoint.reset) OR alter_endpoint.filter IS NOT NULL
                             THEN 0 ELSE ep.filter_errors END,
        disable_after = CASE WHEN 'disable_after' = ANY (alter_endpoint.reset) THEN interval '5 days'
                             WHEN alter_endpoint.disable_after IS NULL THEN ep.disable_after
                             ELSE NULLIF(alter_endpoint.disable_after, interval '0') END,
        updated_at = now()
    WHERE ep.id = target;
    IF credentials IS NOT NULL THEN
        DELETE FROM outbox.endpoint_secrets AS s WHERE s.endpoint_id = target;
        INSERT INTO outbox.endpoint_secrets (endpoint_id, secret) VALUES (target, credentials);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION outbox.rotate_secret(name text, new_secret text DEFAULT NULL,
                                     grace interval DEFAULT '24 hours')
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target integer := outbox.endpoint_id(rotate_secret.name, true);
    signing_secret text;
    current_url text;
BEGIN
    PERFORM outbox.refuse_default(target, 'rotate the secret of',
        'The default endpoint signs with outbox.secret in postgresql.conf.');
    IF rotate_secret.grace IS NULL OR rotate_secret.grace < interval '0' THEN
        RAISE EXCEPTION 'grace must be zero or positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A broker endpoint's secret is its credentials: replaced at once (a
    -- grace period means nothing to a broker), never generated, never
    -- returned.
    SELECT ep.url INTO current_url FROM outbox.endpoints AS ep WHERE ep.id = target;
    IF outbox.is_broker_url(current_url) THEN
        IF rotate_secret.new_secret IS NULL THEN
            RAISE EXCEPTION 'the credentials of broker endpoint "%" cannot be generated', rotate_secret.name
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Pass the new credentials: new_secret => ''user:password'' (percent-encoded).';
        END IF;
        PERFORM outbox.check_endpoint(current_url, NULL, NULL, rotate_secret.new_secret);
        signing_secret := outbox.broker_secret(current_url, rotate_secret.new_secret);
        DELETE FROM outbox.endpoint_secrets AS s WHERE s.endpoint_id = target;
        INSERT INTO outbox.endpoint_secrets (endpoint_id, secret) VALUES (target, signing_secret);
        UPDATE outbox.endpoints AS ep SET updated_at = now() WHERE ep.id = target;
        RETURN NULL;
    END IF;
    PERFORM outbox.check_endpoint(NULL, NULL, NULL, rotate_secret.new_secret);
    signing_secret := COALESCE(rotate_secret.new_secret, outbox.new_secret());
    -- Old secrets stay valid for the grace period (never longer than they
    -- already would), then they are gone.
    UPDATE outbox.endpoint_secrets AS s
    SET expires_at = now() + rotate_secret.grace
    WHERE s.endpoint_id = target AND (s.expires_at IS NULL OR s.expires_at > now() + rotate_secret.grace);
    DELETE FROM outbox.endpoint_secrets AS s WHERE s.endpoint_id = target AND s.expires_at <= now();
    INSERT INTO outbox.endpoint_secrets (endpoint_id, secret) VALUES (target, signing_secret);
    UPDATE outbox.endpoints AS ep SET updated_at = now() WHERE ep.id = target;
    RETURN signing_secret;
END
$$;

CREATE OR REPLACE FUNCTION outbox.disable_endpoint(name text, reason text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target integer := outbox.endpoint_id(disable_endpoint.name, true);
BEGIN
    UPDATE outbox.endpoints AS ep
    SET enabled = false,
        disabled_reason = COALESCE(disable_endpoint.reason, format('disabled by %s', session_user)),
        disabled_at = now(), updated_at = now()
    WHERE ep.id = target;
END
$$;

CREATE OR REPLACE FUNCTION outbox.enable_endpoint(name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target integer := outbox.endpoint_id(enable_endpoint.name, true);
BEGIN
    UPDATE outbox.endpoints AS ep
    SET enabled = true, disabled_reason = NULL, disabled_at = NULL, updated_at = now()
    WHERE ep.id = target;
    -- What waited for the endpoint is due at once.
    UPDATE outbox.deliveries AS d SET next_attempt_at = now()
    WHERE d.endpoint_id = target AND d.state = 'pending' AND d.next_attempt_at > now()
      AND d.next_attempt_at < 'infinity';
    PERFORM pg_notify(current_setting('outbox.channel'), '');
END
$$;

CREATE OR REPLACE FUNCTION outbox.drop_endpoint(name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target integer := outbox.endpoint_id(drop_endpoint.name, true);
    touched uuid[];
BEGIN
    PERFORM outbox.refuse_default(target, 'drop',
        'Disable it with outbox.disable_endpoint(''default'') or leave outbox.url empty.');
    -- Its deliveries go with it; so do events that were only for it.
    WITH gone AS (
        DELETE FROM outbox.deliveries AS d WHERE d.endpoint_id = target RETURNING d.event_id
    )
    SELECT array_agg(gone.event_id) INTO touched FROM gone;
    DELETE FROM outbox.events AS e
    WHERE e.id = ANY (touched)
      AND NOT EXISTS (SELECT 1 FROM outbox.deliveries AS d WHERE d.event_id = e.id);
    DELETE FROM outbox.endpoints AS ep WHERE ep.id = target;
END
$$;

-- Deliver an event again: to the named endpoint, or to every enabled
-- endpoint its topic matches. Returns the number of deliveries queued.
CREATE OR REPLACE FUNCTION outbox.replay(event_id uuid, endpoint text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ev outbox.events;
    target integer;
    queued integer;
BEGIN
    -- The lock keeps pruning from deleting the event while this adds a
    -- delivery to it (see the worker's prune.cpp).
    SELECT * INTO ev FROM outbox.events AS e WHERE e.id = replay.event_id FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event % does not exist', replay.event_id
            USING ERRCODE = 'undefined_object',
                  HINT = 'Delivered events are pruned after outbox.retention.';
    END IF;
    IF replay.endpoint IS NOT NULL THEN
        target := outbox.endpoint_id(replay.endpoint);
    END IF;
    INSERT INTO outbox.deliveries AS d (event_id, endpoint_id, seq, key)
    SELECT ev.id, ep.id, ev.seq, ev.key
    FROM outbox.endpoints AS ep
    WHERE (target IS NOT NULL AND ep.id = target)
       OR (target IS NULL AND ep.enabled AND outbox.topic_matches(ep.topics, ev.topic)
           AND (ep.id <> 0 OR current_setting('outbox.url') <> ''))
    ON CONFLICT ON CONSTRAINT deliveries_pkey DO UPDATE
    SET state = 'pending', attempts = 0, next_attempt_at = now(), finished_at = NULL;
    GET DIAGNOSTICS queued = ROW_COUNT;
    PERFORM pg_notify(current_setting('outbox.channel'), '');
    RETURN queued;
END
$$;

-- Queue an endpoint's dead deliveries again: all of them, or those that
-- died in [since, until) and whose last status is one of `statuses`:
-- '500', '5xx' (any 5..), or 'none' (no HTTP response: a timeout, a
-- network error, a refused address). Returns how many.
--   SELECT outbox.redrive('billing', since => '02:00', until => '03:00', statuses => '{5xx}');
CREATE OR REPLACE FUNCTION outbox.redrive(endpoint text, since timestamptz DEFAULT NULL,
                                          until timestamptz DEFAULT NULL, statuses text[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target integer := outbox.endpoint_id(redrive.endpoint);
    bad text;
    queued integer;
BEGIN
    SELECT s INTO bad FROM unnest(redrive.statuses) AS s
    WHERE s IS NULL OR s !~ '^([1-5][0-9][0-9]|[1-5]xx|none)$' LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'invalid status "%"', coalesce(bad, 'NULL') USING ERRCODE = 'invalid_parameter_value',
            HINT = 'A status is a code (''503''), a class (''5xx'') or ''none'' (no HTTP response).';
    END IF;
    IF redrive.since >= redrive.until THEN
        RAISE EXCEPTION 'since must be before until' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE outbox.deliveries AS d
    SET state = 'pending', attempts = 0, next_attempt_at = now(), finished_at = NULL
    WHERE d.endpoint_id = target AND d.state = 'dead'
      AND (redrive.since IS NULL OR d.finished_at >= redrive.since)
      AND (redrive.until IS NULL OR d.finished_at < redrive.until)
      AND (redrive.statuses IS NULL
           OR (d.last_status IS NULL AND 'none' = ANY (redrive.statuses))
           OR d.last_status::text = ANY (redrive.statuses)
           OR (d.last_status / 100)::text || 'xx' = ANY (redrive.statuses));
    GET DIAGNOSTICS queued = ROW_COUNT;
    PERFORM pg_notify(current_setting('outbox.channel'), '');
    RETURN queued;
END
$$;

-- Operations: the workers' counters, and what the worker says when things
-- change (log lines at LOG and operational events).
--
-- Operational events are events like any other, on topics that begin with
-- "outbox." (reserved: enqueue() refuses them, and the pattern '*' does not
-- match them; an endpoint subscribes with topics => '{outbox.*}'). An event
-- about an endpoint (payload "endpoint") is never routed to that endpoint.

-- Enqueues an operational event. For the extension's own functions and the
-- worker: granted to nobody.
CREATE OR REPLACE FUNCTION outbox.emit(topic text, payload jsonb)
RETURNS uuid
LANGUAGE c VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outbox_emit';

-- Disabled (410 Gone, an admin, or automatically) and enabled again: one log
-- line each, and outbox.endpoint.disabled. (Not for the row a restore
-- merges into the default endpoint: that is no change of state.)
CREATE OR REPLACE FUNCTION outbox.endpoint_state_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_trigger_depth() > 1 THEN
        RETURN NULL;
    END IF;
    IF NOT NEW.enabled THEN
        RAISE LOG 'outbox: endpoint "%" is disabled: %', NEW.name, NEW.disabled_reason;
        PERFORM outbox.emit('outbox.endpoint.disabled', jsonb_build_object(
                    'endpoint', NEW.name, 'reason', NEW.disabled_reason, 'disabled_at', NEW.disabled_at));
    ELSE
        RAISE LOG 'outbox: endpoint "%" is enabled', NEW.name;
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER endpoints_state AFTER UPDATE OF enabled ON outbox.endpoints
FOR EACH ROW WHEN (OLD.enabled IS DISTINCT FROM NEW.enabled) EXECUTE FUNCTION outbox.endpoint_state_changed();

-- The worker's word that an endpoint is failing (failing: true; `since` is
-- the first of its failed attempts in a row) or has recovered. Kept in
-- outbox.endpoints.failing_since, so that each change is told once, by one
-- worker, across restarts: a log line and outbox.endpoint.failing or
-- outbox.endpoint.recovered. Returns whether it changed anything.
CREATE OR REPLACE FUNCTION outbox.note_endpoint_health(endpoint_id integer, failing boolean, since timestamptz,
                                                       consecutive_failures integer, last_error text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    endpoint_name text;
    was_failing_since timestamptz;
BEGIN
    IF failing THEN
        UPDATE outbox.endpoints AS ep SET failing_since = since
        WHERE ep.id = note_endpoint_health.endpoint_id AND ep.failing_since IS NULL
        RETURNING ep.name INTO endpoint_name;
        IF NOT FOUND THEN
            RETURN false;
        END IF;
        RAISE LOG 'outbox: endpoint "%" is failing: % attempts in a row failed since %; the last: %',
            endpoint_name, consecutive_failures, since, last_error;
        PERFORM outbox.emit('outbox.endpoint.failing', jsonb_build_object(
                    'endpoint', endpoint_name, 'failing_since', since,
                    'consecutive_failures', consecutive_failures, 'last_error', last_error));
    ELSE
        SELECT ep.failing_since INTO was_failing_since FROM outbox.endpoints AS ep
        WHERE ep.id = note_endpoint_health.endpoint_id FOR UPDATE;
        UPDATE outbox.endpoints AS ep SET failing_since = NULL
        WHERE ep.id = note_endpoint_health.endpoint_id AND ep.failing_since IS NOT NULL
        RETURNING ep.name INTO endpoint_name;
        IF NOT FOUND THEN
            RETURN false;
        END IF;
        RAISE LOG 'outbox: endpoint "%" has recovered: its first success after failing since %',
            endpoint_name, was_failing_since;
        PERFORM outbox.emit('outbox.endpoint.recovered', jsonb_build_object(
                    'endpoint', endpoint_name, 'failing_since', was_failing_since, 'recovered_at', now()));
    END IF;
    RETURN true;
END
$$;

-- The gauges of one endpoint, counted from its pending deliveries (a range
-- of deliveries_due). A function of its own so that the count is planned
-- for one endpoint, and without JIT: a count over a million rows looks
-- costly enough to the planner to compile it, which took longer (200 ms
-- per read) than the count. SECURITY DEFINER: pg_monitor reads the gauges,
-- not the deliveries.
CREATE OR REPLACE FUNCTION outbox.endpoint_gauges(endpoint_id integer,
    OUT pending bigint, OUT due bigint, OUT waiting bigint, OUT oldest_due timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT count(*),
           count(*) FILTER (WHERE d.next_attempt_at <= now()),
           count(*) FILTER (WHERE d.next_attempt_at > now() AND d.next_attempt_at < 'infinity'),
           min(d.next_attempt_at) FILTER (WHERE d.next_attempt_at <= now())
    FROM outbox.deliveries AS d
    WHERE d.state = 'pending' AND d.endpoint_id = endpoint_gauges.endpoint_id
$$;

-- The counters the workers keep in shared memory for an endpoint, since
-- outbox.stats_reset() (or the server's start): one row, zeros when it has
-- none (or the library is not preloaded).
CREATE OR REPLACE FUNCTION outbox.endpoint_counters(endpoint_id integer,
    OUT delivered bigint, OUT failed_attempts bigint,
    OUT last_success_at timestamptz, OUT last_failure_at timestamptz,
    OUT consecutive_failures integer, OUT in_flight integer,
    OUT latency_p50 interval, OUT latency_p99 interval, OUT stats_reset timestamptz)
LANGUAGE c VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outbox_endpoint_counters';

-- Zeroes the counters of every endpoint (not its state: a run of failures
-- and whether it is failing stay).
CREATE OR REPLACE FUNCTION outbox.stats_reset()
RETURNS void
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outbox_stats_reset';

-- Idempotency keys, in the caller's transaction. A retried or double-sent
-- request (a double click, a network retry) carries the key of the first;
-- the transaction that holds the key does the work and stores its answer
-- with idempotency_complete(), all or nothing; the others wait for it and
-- get that answer. See README "From your application".
--
-- Whoever holds a key holds an advisory lock on it (for the transaction), so
-- a second caller waits (or, with wait => false, hears 'in_progress') until
-- the first ends; then it reads what the first committed. Requires READ
-- COMMITTED, the default: each statement must see what committed before it.

CREATE OR REPLACE FUNCTION outbox.idempotency_begin(key text, fingerprint text DEFAULT NULL,
                                                    ttl interval DEFAULT '24 hours', wait boolean DEFAULT true)
RETURNS TABLE (state text, response jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k outbox.idempotency_keys;
BEGIN
    IF idempotency_begin.key IS NULL OR idempotency_begin.ttl IS NULL OR idempotency_begin.wait IS NULL THEN
        RAISE EXCEPTION 'key, ttl and wait must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF idempotency_begin.key = '' OR octet_length(idempotency_begin.key) > 255 THEN
        RAISE EXCEPTION 'an idempotency key is 1 to 255 bytes'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use a UUID made by the client for each logical request.';
    END IF;
    IF idempotency_begin.ttl <= interval '0' THEN
        RAISE EXCEPTION 'ttl must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'idempotency_begin() needs the read committed isolation level'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = format('This transaction is %s: it would not see what another holder of the key committed.',
                                  current_setting('transaction_isolation')),
                  HINT = 'Run the request''s transaction at the default isolation level.';
    END IF;
    IF idempotency_begin.wait THEN
        PERFORM pg_advisory_xact_lock(1869902968, hashtext(idempotency_begin.key));
    ELSIF NOT pg_try_advisory_xact_lock(1869902968, hashtext(idempotency_begin.key)) THEN
        RETURN QUERY SELECT 'in_progress'::text, NULL::jsonb;
        RETURN;
    END IF;
    SELECT * INTO k FROM outbox.idempotency_keys AS i WHERE i.key = idempotency_begin.key;
    IF FOUND AND k.expires_at > now() THEN
        IF k.holder_txid = pg_current_xact_id() THEN
            RETURN QUERY SELECT 'new'::text, NULL::jsonb;  -- asked again in the transaction that holds it
        ELSIF k.fingerprint IS DISTINCT FROM idempotency_begin.fingerprint THEN
            RETURN QUERY SELECT 'mismatch'::text, NULL::jsonb;
        ELSE
            RETURN QUERY SELECT 'completed'::text, k.response;
        END IF;
        RETURN;
    END IF;
    -- Unknown, or forgotten after its ttl: this transaction holds it now.
    DELETE FROM outbox.idempotency_keys AS i WHERE i.key = idempotency_begin.key;
    INSERT INTO outbox.idempotency_keys (key, fingerprint, expires_at)
    VALUES (idempotency_begin.key, idempotency_begin.fingerprint, now() + idempotency_begin.ttl);
    RETURN QUERY SELECT 'new'::text, NULL::jsonb;
END
$$;

CREATE OR REPLACE FUNCTION outbox.idempotency_complete(key text, response jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF idempotency_complete.key IS NULL THEN
        RAISE EXCEPTION 'key must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    UPDATE outbox.idempotency_keys AS i
    SET response = idempotency_complete.response, completed_at = now()
    WHERE i.key = idempotency_complete.key AND i.holder_txid = pg_current_xact_id();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'idempotency key "%" is not held by this transaction', left(idempotency_complete.key, 64)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Call outbox.idempotency_begin() first, in the same transaction, and complete only when it said ''new''.';
    END IF;
END
$$;

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

-- Endpoints with their state, without secrets.
CREATE OR REPLACE VIEW outbox.endpoint_status AS
SELECT ep.name,
       CASE WHEN ep.id = 0 THEN NULLIF(current_setting('outbox.url'), '') ELSE ep.url END AS url,
       ep.topics, ep.headers, ep.timeout, ep.enabled, ep.disabled_reason, ep.disabled_at,
       coalesce(st.pending, 0) AS pending, coalesce(st.delivered, 0) AS delivered,
       coalesce(st.dead, 0) AS dead, st.last_success_at, st.last_failure_at,
       (SELECT d.last_error FROM outbox.deliveries AS d
        WHERE d.endpoint_id = ep.id AND d.last_error IS NOT NULL
        ORDER BY d.last_attempt_at DESC LIMIT 1) AS last_error,
       ep.rate_limit, ep.max_in_flight, ep.max_attempts, ep.retry_base, ep.retry_max, ep.filter, ep.filter_errors,
       ep.disable_after,
       ep.failing_since
FROM outbox.endpoints AS ep
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE d.state = 'pending') AS pending,
           count(*) FILTER (WHERE d.state = 'delivered') AS delivered,
           count(*) FILTER (WHERE d.state = 'dead') AS dead,
           max(d.finished_at) FILTER (WHERE d.state = 'delivered') AS last_success_at,
           max(d.last_attempt_at) FILTER (WHERE d.last_error IS NOT NULL) AS last_failure_at
    FROM outbox.deliveries AS d
    WHERE d.endpoint_id = ep.id
) AS st ON true;

-- One row per endpoint: how much waits and how delivery goes. The gauges
-- are counted from the pending deliveries (one index range per endpoint):
-- due is claimable now (not leased, not parked behind an earlier event of
-- its key, not waiting for a retry); lag is the age of the oldest due one,
-- so scheduled retries do not count as lag. The counters come from the
-- workers' shared memory, since stats_reset.
CREATE OR REPLACE VIEW outbox.stats AS
SELECT ep.name AS endpoint,
       coalesce(g.pending, 0) AS pending,
       coalesce(g.due, 0) AS due,
       greatest(coalesce(g.waiting, 0) - c.in_flight, 0) AS retrying,
       c.in_flight,
       (SELECT count(*) FROM outbox.deliveries AS d WHERE d.state = 'dead' AND d.endpoint_id = ep.id) AS dead,
       coalesce(now() - g.oldest_due, interval '0') AS lag,
       c.delivered, c.failed_attempts, c.last_success_at, c.last_failure_at, c.consecutive_failures,
       c.latency_p50, c.latency_p99, c.stats_reset,
       ep.enabled, ep.failing_since
FROM outbox.endpoints AS ep
CROSS JOIN LATERAL outbox.endpoint_gauges(ep.id) AS g
CROSS JOIN LATERAL outbox.endpoint_counters(ep.id) AS c;

-- Nothing is reachable by PUBLIC; writers enqueue; admins manage endpoints,
-- read delivery history and statistics and replay; monitoring (pg_monitor)
-- reads the statistics. Secrets are readable by no role.
REVOKE ALL ON SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA outbox FROM PUBLIC;
GRANT USAGE ON SCHEMA outbox TO outbox_writer, outbox_admin;
GRANT EXECUTE ON FUNCTION
    outbox.enqueue(text, jsonb, text, jsonb, uuid),
    outbox.idempotency_begin(text, text, interval, boolean),
    outbox.idempotency_complete(text, jsonb)
TO outbox_writer, outbox_admin;
GRANT SELECT ON outbox.events, outbox.deliveries, outbox.endpoints, outbox.endpoint_status, outbox.attempts,
                outbox.stats, outbox.idempotency_keys
TO outbox_admin;
GRANT USAGE ON SCHEMA outbox TO pg_monitor;
GRANT SELECT ON outbox.stats TO pg_monitor;
GRANT EXECUTE ON FUNCTION outbox.endpoint_counters(integer), outbox.endpoint_gauges(integer) TO outbox_admin, pg_monitor;
GRANT EXECUTE ON FUNCTION
    outbox.create_endpoint(text, text, text[], text, jsonb, interval, double precision, integer, integer, interval,
                           interval, jsonpath, interval),
    outbox.alter_endpoint(text, text, text[], jsonb, interval, double precision, integer, integer, interval, interval,
                          jsonpath, interval, text[]),
    outbox.rotate_secret(text, text, interval),
    outbox.disable_endpoint(text, text),
    outbox.enable_endpoint(text),
    outbox.drop_endpoint(text),
    outbox.replay(uuid, text),
    outbox.redrive(text, timestamptz, timestamptz, text[]),
    outbox.stats_reset()
TO outbox_admin;

