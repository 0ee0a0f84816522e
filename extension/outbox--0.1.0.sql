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

-- Webhook endpoints. Row 0 is the default endpoint, whose URL and secret
-- are outbox.url and outbox.secret in postgresql.conf; it receives every
-- topic and can be disabled and enabled like the others.
CREATE TABLE outbox.endpoints (
    id              integer     NOT NULL PRIMARY KEY,
    name            text        NOT NULL UNIQUE
                    CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
    url             text        CHECK ((id = 0) = (url IS NULL)),
    topics          text[]      NOT NULL DEFAULT '{*}',
    headers         jsonb,
    timeout         interval    CHECK (timeout > interval '0'),
    enabled         boolean     NOT NULL DEFAULT true,
    disabled_reason text,
    disabled_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE SEQUENCE outbox.endpoints_id_seq AS integer START 1 OWNED BY outbox.endpoints.id;
ALTER TABLE outbox.endpoints ALTER COLUMN id SET DEFAULT pg_catalog.nextval('outbox.endpoints_id_seq');
INSERT INTO outbox.endpoints (id, name, url) VALUES (0, 'default', NULL);

-- Signing secrets, apart from the endpoints so that no role can read them
-- (admins get a secret only from the function that sets it). During a
-- rotation an endpoint has two: the new one (expires_at NULL) and the old one
-- until expires_at; requests carry a signature for each.
CREATE TABLE outbox.endpoint_secrets (
    endpoint_id integer     NOT NULL REFERENCES outbox.endpoints (id) ON DELETE CASCADE,
    secret      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    expires_at  timestamptz,
    PRIMARY KEY (endpoint_id, created_at)
);

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
    PRIMARY KEY (event_id, endpoint_id),
    CHECK ((state = 'pending') = (finished_at IS NULL))
) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05);

-- What the claim scans: only pending rows, in due order, so that its cost
-- does not grow with delivered history or with the backlog.
CREATE INDEX deliveries_due ON outbox.deliveries (endpoint_id, next_attempt_at, seq)
    WHERE state = 'pending';

-- Per-key order: "is there an earlier pending delivery of this key?"
CREATE INDEX deliveries_key_order ON outbox.deliveries (endpoint_id, key, seq)
    WHERE state = 'pending' AND key IS NOT NULL;

-- What pruning scans: finished rows, oldest first.
CREATE INDEX deliveries_finished ON outbox.deliveries (state, finished_at)
    WHERE state <> 'pending';

ALTER TABLE outbox.events SET (autovacuum_vacuum_scale_factor = 0.02,
                               autovacuum_vacuum_insert_scale_factor = 0.05);

-- Whether a topic matches any of an endpoint's patterns: an exact topic, a
-- prefix ending in '*' ('order.*'), or '*'.
CREATE FUNCTION outbox.topic_matches(patterns text[], topic text)
RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outbox_topic_matches';

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
-- since the last call: one for each enabled endpoint whose topic patterns
-- match, the default endpoint (0) only when include_default (the worker
-- passes whether outbox.url is set). Called by the worker; returns the number
-- of events dispatched. With no endpoint to deliver to, events wait. An event is new when
-- its transaction is visible now but was not in done_snapshot: it was in
-- progress then (done_snapshot's xip list) or started after it (txid >= its
-- xmax). Both are index lookups, so a long-running transaction does not make
-- dispatch rescan old events.
CREATE FUNCTION outbox.dispatch(max_events integer, include_default boolean DEFAULT true)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    state     outbox.dispatch_state;
    last_txid xid8;
    last_seq  bigint;
    from_txid xid8;
    from_seq  bigint;
    n         integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM outbox.endpoints AS ep
                   WHERE ep.enabled AND (ep.id <> 0 OR include_default)) THEN
        RETURN 0;
    END IF;
    SELECT * INTO state FROM outbox.dispatch_state FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN 0;  -- another worker is dispatching
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
        (SELECT e.id, e.seq, e.txid, e.key, e.topic
         FROM outbox.events AS e
         WHERE state.done_snapshot IS NOT NULL
           AND e.txid = ANY (ARRAY(SELECT pg_snapshot_xip(state.done_snapshot)))
           AND (e.txid, e.seq) > (state.cursor_txid, state.cursor_seq)
           AND pg_visible_in_snapshot(e.txid, state.target_snapshot)
         ORDER BY e.txid, e.seq
         LIMIT max_events)
        UNION ALL
        (SELECT e.id, e.seq, e.txid, e.key, e.topic
         FROM outbox.events AS e
         WHERE (e.txid, e.seq) > (from_txid, from_seq)
           AND e.txid < pg_snapshot_xmax(state.target_snapshot)
           AND pg_visible_in_snapshot(e.txid, state.target_snapshot)
         ORDER BY e.txid, e.seq
         LIMIT max_events)
    ), batch AS (
        SELECT * FROM candidates ORDER BY txid, seq LIMIT max_events
    ), inserted AS (
        -- A keyed delivery behind an earlier pending one of its key (in
        -- this batch or already queued) is parked: next_attempt_at
        -- 'infinity' keeps it out of the claim's scan until recording its
        -- predecessor's outcome moves it up (outbox.record). Claims still
        -- check the order themselves; parking only keeps them cheap.
        INSERT INTO outbox.deliveries (event_id, endpoint_id, seq, key, next_attempt_at)
        SELECT m.id, m.endpoint_id, m.seq, m.key,
               CASE WHEN m.key IS NOT NULL
                     AND (m.nth_of_key > 1
                          OR EXISTS (SELECT 1 FROM outbox.deliveries AS p
                                     WHERE p.state = 'pending' AND p.endpoint_id = m.endpoint_id
                                       AND p.key = m.key AND p.seq < m.seq))
                    THEN 'infinity'::timestamptz ELSE now() END
        FROM (SELECT b.id, ep.id AS endpoint_id, b.seq, b.key,
                     row_number() OVER (PARTITION BY ep.id, b.key ORDER BY b.seq) AS nth_of_key
              FROM batch AS b
              JOIN outbox.endpoints AS ep
                ON ep.enabled
               AND (ep.id <> 0 OR include_default)
               AND outbox.topic_matches(ep.topics, b.topic)) AS m
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

-- Claims up to max_rows due deliveries of one endpoint for sending: locks
-- them (FOR UPDATE SKIP LOCKED, so concurrent claimers never get the same
-- row), leases them for lease_ms (next_attempt_at moves forward, so they
-- come back by themselves if the claimer dies) and counts the attempt. A
-- keyed delivery is claimed only when no earlier delivery of the same key
-- and endpoint is still pending. The worker calls this; so can an external
-- relay that shares the table. The partial index deliveries_due serves the
-- scan and deliveries_key_order the per-key test, so the cost does not grow
-- with the backlog.
CREATE FUNCTION outbox.claim(endpoint_id integer, max_rows integer, lease_ms bigint)
RETURNS TABLE (event_id uuid, attempt integer, topic text, payload text, header_lines text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH due AS (
        SELECT d.event_id, d.endpoint_id
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
        ORDER BY d.next_attempt_at, d.seq
        LIMIT max_rows
        FOR UPDATE SKIP LOCKED
    ), leased AS (
        UPDATE outbox.deliveries AS d
        SET attempts = d.attempts + 1,
            next_attempt_at = now() + lease_ms * interval '1 millisecond',
            last_attempt_at = now()
        FROM due
        WHERE d.event_id = due.event_id
          AND d.endpoint_id = due.endpoint_id
        RETURNING d.event_id, d.attempts, d.seq
    )
    SELECT l.event_id, l.attempts, e.topic, e.payload::text,
           (SELECT string_agg(h.key || ': ' || h.value, E'\n')
            FROM jsonb_each_text(e.headers) AS h)
    FROM leased AS l
    JOIN outbox.events AS e ON e.id = l.event_id
    ORDER BY l.seq;
END
$$;

-- Writes the outcome of finished attempts (the worker's batch, as parallel
-- arrays) and moves up the next delivery of each key whose head is now
-- delivered or dead. A result whose attempt number no longer matches (the
-- lease ran out and another claimer took the delivery) is ignored.
CREATE FUNCTION outbox.record(event_ids uuid[], endpoint_ids integer[], attempts integer[],
                              states text[], retry_in_ms bigint[], statuses integer[],
                              errors text[], durations_us bigint[], responses text[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    done_endpoints integer[];
    done_keys text[];
    recorded integer;
BEGIN
    WITH r AS (
        SELECT * FROM unnest(event_ids, endpoint_ids, attempts, states, retry_in_ms, statuses, errors,
                             durations_us, responses)
                      AS r(event_id, endpoint_id, attempt, state, retry_in_ms, status, error, duration_us, response)
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
        RETURNING d.endpoint_id, d.key, d.state
    )
    SELECT count(*)::integer,
           array_agg(u.endpoint_id) FILTER (WHERE u.key IS NOT NULL AND u.state <> 'pending'),
           array_agg(u.key) FILTER (WHERE u.key IS NOT NULL AND u.state <> 'pending')
    INTO recorded, done_endpoints, done_keys
    FROM updated AS u;

    -- The next pending delivery of each finished key may go now. (A new
    -- statement, so it sees the rows just finished.)
    UPDATE outbox.deliveries AS d
    SET next_attempt_at = now()
    FROM (SELECT DISTINCT f.endpoint_id, f.key FROM unnest(done_endpoints, done_keys) AS f(endpoint_id, key)) AS f,
         LATERAL (SELECT n.event_id FROM outbox.deliveries AS n
                  WHERE n.state = 'pending' AND n.endpoint_id = f.endpoint_id AND n.key = f.key
                  ORDER BY n.seq LIMIT 1) AS nxt
    WHERE d.event_id = nxt.event_id AND d.endpoint_id = f.endpoint_id
      AND d.next_attempt_at = 'infinity';
    RETURN recorded;
END
$$;

-- Moves up parked deliveries that head their key. Recording normally does
-- this; this sweep (run by the worker every few seconds) covers a head
-- finished while its follower was being dispatched. A skip scan: one index
-- descent per (endpoint, key), however long the backlog.
CREATE FUNCTION outbox.unpark_heads()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    moved integer;
BEGIN
    WITH RECURSIVE heads AS (
        (SELECT d.endpoint_id, d.key, d.seq FROM outbox.deliveries AS d
         WHERE d.state = 'pending' AND d.key IS NOT NULL
         ORDER BY d.endpoint_id, d.key, d.seq LIMIT 1)
        UNION ALL
        SELECT n.endpoint_id, n.key, n.seq
        FROM heads AS h,
             LATERAL (SELECT d.endpoint_id, d.key, d.seq FROM outbox.deliveries AS d
                      WHERE d.state = 'pending' AND d.key IS NOT NULL
                        AND (d.endpoint_id, d.key) > (h.endpoint_id, h.key)
                      ORDER BY d.endpoint_id, d.key, d.seq LIMIT 1) AS n
    )
    UPDATE outbox.deliveries AS d
    SET next_attempt_at = now()
    FROM heads AS h
    WHERE d.endpoint_id = h.endpoint_id AND d.key = h.key AND d.seq = h.seq
      AND d.state = 'pending' AND d.next_attempt_at = 'infinity';
    GET DIAGNOSTICS moved = ROW_COUNT;
    RETURN moved;
END
$$;

-- Endpoint management. SECURITY DEFINER because they write secrets, which
-- no role may read; EXECUTE is granted to outbox_admin only. Every function
-- validates all its input before it writes anything.

CREATE FUNCTION outbox.check_endpoint(url text, topics text[], headers jsonb, secret text)
RETURNS void
LANGUAGE c
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outbox_check_endpoint';

CREATE FUNCTION outbox.new_secret()
RETURNS text
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outbox_new_secret';

-- The id of an endpoint by name, or a clear error.
CREATE FUNCTION outbox.endpoint_id(endpoint_name text, for_update boolean DEFAULT false)
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
CREATE FUNCTION outbox.refuse_default(endpoint_id integer, what text, hint text)
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

CREATE FUNCTION outbox.create_endpoint(name text, url text, topics text[] DEFAULT '{*}',
                                       secret text DEFAULT NULL, headers jsonb DEFAULT NULL,
                                       timeout interval DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id integer;
    signing_secret text;
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
    IF EXISTS (SELECT 1 FROM outbox.endpoints AS ep WHERE ep.name = create_endpoint.name) THEN
        RAISE EXCEPTION 'endpoint "%" already exists', create_endpoint.name
            USING ERRCODE = 'duplicate_object', HINT = 'Use outbox.alter_endpoint() to change it.';
    END IF;
    signing_secret := COALESCE(create_endpoint.secret, outbox.new_secret());
    INSERT INTO outbox.endpoints (name, url, topics, headers, timeout)
    VALUES (create_endpoint.name, create_endpoint.url, create_endpoint.topics,
            NULLIF(create_endpoint.headers, '{}'::jsonb), create_endpoint.timeout)
    RETURNING id INTO new_id;
    INSERT INTO outbox.endpoint_secrets (endpoint_id, secret) VALUES (new_id, signing_secret);
    RETURN signing_secret;
END
$$;

CREATE FUNCTION outbox.alter_endpoint(name text, url text DEFAULT NULL, topics text[] DEFAULT NULL,
                                      headers jsonb DEFAULT NULL, timeout interval DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target integer := outbox.endpoint_id(alter_endpoint.name, true);
BEGIN
    PERFORM outbox.refuse_default(target, 'alter',
        'The default endpoint is configured by outbox.url in postgresql.conf.');
    IF alter_endpoint.timeout <= interval '0' THEN
        RAISE EXCEPTION 'timeout must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM outbox.check_endpoint(alter_endpoint.url, alter_endpoint.topics, alter_endpoint.headers, NULL);
    UPDATE outbox.endpoints AS ep
    SET url = COALESCE(alter_endpoint.url, ep.url),
        topics = COALESCE(alter_endpoint.topics, ep.topics),
        headers = CASE WHEN alter_endpoint.headers IS NULL THEN ep.headers
                       ELSE NULLIF(alter_endpoint.headers, '{}'::jsonb) END,
        timeout = COALESCE(alter_endpoint.timeout, ep.timeout),
        updated_at = now()
    WHERE ep.id = target;
END
$$;

CREATE FUNCTION outbox.rotate_secret(name text, new_secret text DEFAULT NULL,
                                     grace interval DEFAULT '24 hours')
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target integer := outbox.endpoint_id(rotate_secret.name, true);
    signing_secret text;
BEGIN
    PERFORM outbox.refuse_default(target, 'rotate the secret of',
        'The default endpoint signs with outbox.secret in postgresql.conf.');
    IF rotate_secret.grace IS NULL OR rotate_secret.grace < interval '0' THEN
        RAISE EXCEPTION 'grace must be zero or positive' USING ERRCODE = 'invalid_parameter_value';
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

CREATE FUNCTION outbox.disable_endpoint(name text, reason text DEFAULT NULL)
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

CREATE FUNCTION outbox.enable_endpoint(name text)
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

CREATE FUNCTION outbox.drop_endpoint(name text)
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
CREATE FUNCTION outbox.replay(event_id uuid, endpoint text DEFAULT NULL)
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

-- Queue an endpoint's dead deliveries again (those that died since `since`,
-- or all). Returns how many.
CREATE FUNCTION outbox.redrive(endpoint text, since timestamptz DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target integer := outbox.endpoint_id(redrive.endpoint);
    queued integer;
BEGIN
    UPDATE outbox.deliveries AS d
    SET state = 'pending', attempts = 0, next_attempt_at = now(), finished_at = NULL
    WHERE d.endpoint_id = target AND d.state = 'dead'
      AND (redrive.since IS NULL OR d.finished_at >= redrive.since);
    GET DIAGNOSTICS queued = ROW_COUNT;
    PERFORM pg_notify(current_setting('outbox.channel'), '');
    RETURN queued;
END
$$;

-- Endpoints with their state, without secrets.
CREATE VIEW outbox.endpoint_status AS
SELECT ep.name,
       CASE WHEN ep.id = 0 THEN NULLIF(current_setting('outbox.url'), '') ELSE ep.url END AS url,
       ep.topics, ep.headers, ep.timeout, ep.enabled, ep.disabled_reason, ep.disabled_at,
       coalesce(st.pending, 0) AS pending, coalesce(st.delivered, 0) AS delivered,
       coalesce(st.dead, 0) AS dead, st.last_success_at, st.last_failure_at,
       (SELECT d.last_error FROM outbox.deliveries AS d
        WHERE d.endpoint_id = ep.id AND d.last_error IS NOT NULL
        ORDER BY d.last_attempt_at DESC LIMIT 1) AS last_error
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

-- Nothing is reachable by PUBLIC; writers enqueue; admins manage endpoints,
-- read delivery history and replay. Secrets are readable by no role.
REVOKE ALL ON SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA outbox FROM PUBLIC;
GRANT USAGE ON SCHEMA outbox TO outbox_writer, outbox_admin;
GRANT EXECUTE ON FUNCTION outbox.enqueue(text, jsonb, text, jsonb, uuid) TO outbox_writer, outbox_admin;
GRANT SELECT ON outbox.events, outbox.deliveries, outbox.endpoints, outbox.endpoint_status TO outbox_admin;
GRANT EXECUTE ON FUNCTION
    outbox.create_endpoint(text, text, text[], text, jsonb, interval),
    outbox.alter_endpoint(text, text, text[], jsonb, interval),
    outbox.rotate_secret(text, text, interval),
    outbox.disable_endpoint(text, text),
    outbox.enable_endpoint(text),
    outbox.drop_endpoint(text),
    outbox.replay(uuid, text),
    outbox.redrive(text, timestamptz)
TO outbox_admin;
