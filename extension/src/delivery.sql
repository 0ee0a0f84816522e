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
