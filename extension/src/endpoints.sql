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

CREATE OR REPLACE FUNCTION outbox.create_endpoint_config(name text, url text, topics text[] DEFAULT '{*}',
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
    IF create_endpoint_config.name IS NULL OR create_endpoint_config.url IS NULL OR create_endpoint_config.topics IS NULL THEN
        RAISE EXCEPTION 'name, url and topics must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF create_endpoint_config.name !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$' THEN
        RAISE EXCEPTION 'invalid endpoint name "%"', left(create_endpoint_config.name, 64)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'An endpoint name is 1 to 63 letters, digits, ''.'', ''_'' or ''-'', starting with a letter or digit.';
    END IF;
    IF create_endpoint_config.timeout <= interval '0' THEN
        RAISE EXCEPTION 'timeout must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM outbox.check_endpoint(create_endpoint_config.url, create_endpoint_config.topics, create_endpoint_config.headers,
                                  create_endpoint_config.secret);
    PERFORM outbox.check_endpoint_policy(create_endpoint_config.rate_limit, create_endpoint_config.max_in_flight,
                                         create_endpoint_config.max_attempts, create_endpoint_config.retry_base,
                                         create_endpoint_config.retry_max, create_endpoint_config.filter,
                                         create_endpoint_config.disable_after);
    IF EXISTS (SELECT 1 FROM outbox.endpoints AS ep WHERE ep.name = create_endpoint_config.name) THEN
        RAISE EXCEPTION 'endpoint "%" already exists', create_endpoint_config.name
            USING ERRCODE = 'duplicate_object', HINT = 'Use outbox.alter_endpoint() to change it.';
    END IF;
    -- A broker endpoint keeps its credentials (from the URL or `secret`) as
    -- its secret, and its URL without them; it signs nothing.
    broker := outbox.is_broker_url(create_endpoint_config.url);
    IF broker THEN
        stored_url := outbox.broker_url(create_endpoint_config.url);
        signing_secret := outbox.broker_secret(create_endpoint_config.url, create_endpoint_config.secret);
    ELSE
        stored_url := create_endpoint_config.url;
        signing_secret := COALESCE(create_endpoint_config.secret, outbox.new_secret());
    END IF;
    INSERT INTO outbox.endpoints (name, url, topics, headers, timeout, rate_limit, max_in_flight, max_attempts,
                                  retry_base, retry_max, filter, disable_after)
    VALUES (create_endpoint_config.name, stored_url, create_endpoint_config.topics,
            NULLIF(create_endpoint_config.headers, '{}'::jsonb), create_endpoint_config.timeout, create_endpoint_config.rate_limit,
            create_endpoint_config.max_in_flight, create_endpoint_config.max_attempts,
            create_endpoint_config.retry_base, create_endpoint_config.retry_max, create_endpoint_config.filter,
            NULLIF(create_endpoint_config.disable_after, interval '0'))
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
CREATE OR REPLACE FUNCTION outbox.alter_endpoint_config(name text, url text DEFAULT NULL, topics text[] DEFAULT NULL,
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
    target integer := outbox.endpoint_id(alter_endpoint_config.name, true);
    resettable constant text[] := '{rate_limit, max_in_flight, max_attempts, retry_base, retry_max, filter,
                                    disable_after}';
    current outbox.endpoints;
    new_url text := alter_endpoint_config.url;
    credentials text;
BEGIN
    PERFORM outbox.refuse_default(target, 'alter',
        'The default endpoint is configured by outbox.url in postgresql.conf.');
    IF alter_endpoint_config.timeout <= interval '0' THEN
        RAISE EXCEPTION 'timeout must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (coalesce(alter_endpoint_config.reset, '{}') <@ resettable) THEN
        RAISE EXCEPTION 'cannot reset %', (SELECT string_agg(r, ', ') FROM unnest(alter_endpoint_config.reset) AS r
                                           WHERE r IS NULL OR r <> ALL (resettable))
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'reset takes rate_limit, max_in_flight, max_attempts, retry_base, retry_max, filter and disable_after.';
    END IF;
    PERFORM outbox.check_endpoint(alter_endpoint_config.url, alter_endpoint_config.topics, alter_endpoint_config.headers, NULL);
    SELECT * INTO current FROM outbox.endpoints AS ep WHERE ep.id = target;
    -- An HTTP endpoint's secrets are signing keys, a broker's its
    -- credentials: an endpoint stays what it is. New credentials in a broker
    -- URL replace the old ones.
    IF alter_endpoint_config.url IS NOT NULL THEN
        IF outbox.is_broker_url(alter_endpoint_config.url) <> outbox.is_broker_url(current.url) THEN
            RAISE EXCEPTION 'cannot change endpoint "%" between HTTP and a message broker', alter_endpoint_config.name
                USING ERRCODE = 'feature_not_supported',
                      HINT = 'Create a new endpoint with outbox.create_endpoint() and drop this one.';
        END IF;
        IF outbox.is_broker_url(alter_endpoint_config.url) THEN
            new_url := outbox.broker_url(alter_endpoint_config.url);
            credentials := outbox.broker_secret(alter_endpoint_config.url, NULL);
        END IF;
    END IF;
    -- The policy as it will be, checked whole (retry_base against retry_max).
    PERFORM outbox.check_endpoint_policy(
        alter_endpoint_config.rate_limit, alter_endpoint_config.max_in_flight,
        coalesce(alter_endpoint_config.max_attempts, current.max_attempts),
        CASE WHEN 'retry_base' = ANY (alter_endpoint_config.reset) THEN NULL
             ELSE coalesce(alter_endpoint_config.retry_base, current.retry_base) END,
        CASE WHEN 'retry_max' = ANY (alter_endpoint_config.reset) THEN NULL
             ELSE coalesce(alter_endpoint_config.retry_max, current.retry_max) END,
        alter_endpoint_config.filter, alter_endpoint_config.disable_after);
    UPDATE outbox.endpoints AS ep
    SET url = COALESCE(new_url, ep.url),
        topics = COALESCE(alter_endpoint_config.topics, ep.topics),
        headers = CASE WHEN alter_endpoint_config.headers IS NULL THEN ep.headers
                       ELSE NULLIF(alter_endpoint_config.headers, '{}'::jsonb) END,
        timeout = COALESCE(alter_endpoint_config.timeout, ep.timeout),
        rate_limit = CASE WHEN 'rate_limit' = ANY (alter_endpoint_config.reset) THEN NULL
                          ELSE COALESCE(alter_endpoint_config.rate_limit, ep.rate_limit) END,
        max_in_flight = CASE WHEN 'max_in_flight' = ANY (alter_endpoint_config.reset) THEN NULL
                             ELSE COALESCE(alter_endpoint_config.max_in_flight, ep.max_in_flight) END,
        max_attempts = CASE WHEN 'max_attempts' = ANY (alter_endpoint_config.reset) THEN NULL
                            ELSE COALESCE(alter_endpoint_config.max_attempts, ep.max_attempts) END,
        retry_base = CASE WHEN 'retry_base' = ANY (alter_endpoint_config.reset) THEN NULL
                          ELSE COALESCE(alter_endpoint_config.retry_base, ep.retry_base) END,
        retry_max = CASE WHEN 'retry_max' = ANY (alter_endpoint_config.reset) THEN NULL
                         ELSE COALESCE(alter_endpoint_config.retry_max, ep.retry_max) END,
        filter = CASE WHEN 'filter' = ANY (alter_endpoint_config.reset) THEN NULL
                      ELSE COALESCE(alter_endpoint_config.filter, ep.filter) END,
        filter_errors = CASE WHEN 'filter' = ANY (alter_endpoint_config.reset) OR alter_endpoint_config.filter IS NOT NULL
                             THEN 0 ELSE ep.filter_errors END,
        disable_after = CASE WHEN 'disable_after' = ANY (alter_endpoint_config.reset) THEN interval '5 days'
                             WHEN alter_endpoint_config.disable_after IS NULL THEN ep.disable_after
                             ELSE NULLIF(alter_endpoint_config.disable_after, interval '0') END,
        updated_at = now()
    WHERE ep.id = target;
    IF credentials IS NOT NULL THEN
        DELETE FROM outbox.endpoint_secrets AS s WHERE s.endpoint_id = target;
        INSERT INTO outbox.endpoint_secrets (endpoint_id, secret) VALUES (target, credentials);
    END IF;
END
$$;

-- create_endpoint() and alter_endpoint() are the caller's own (SECURITY
-- INVOKER): a callback they name (on_result) is checked for, and runs as,
-- the role that names it (outbox.set_endpoint_callback, C). The endpoint
-- itself is written by the SECURITY DEFINER functions above.
CREATE OR REPLACE FUNCTION outbox.create_endpoint(name text, url text, topics text[] DEFAULT '{*}',
                                       secret text DEFAULT NULL, headers jsonb DEFAULT NULL,
                                       timeout interval DEFAULT NULL, rate_limit double precision DEFAULT NULL,
                                       max_in_flight integer DEFAULT NULL, max_attempts integer DEFAULT NULL,
                                       retry_base interval DEFAULT NULL, retry_max interval DEFAULT NULL,
                                       filter jsonpath DEFAULT NULL,
                                       disable_after interval DEFAULT '5 days', on_result text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    signing_secret text;
BEGIN
    signing_secret := outbox.create_endpoint_config(
        create_endpoint.name, create_endpoint.url, create_endpoint.topics, create_endpoint.secret,
        create_endpoint.headers, create_endpoint.timeout, create_endpoint.rate_limit, create_endpoint.max_in_flight,
        create_endpoint.max_attempts, create_endpoint.retry_base, create_endpoint.retry_max, create_endpoint.filter,
        create_endpoint.disable_after);
    IF create_endpoint.on_result <> '' THEN
        PERFORM outbox.set_endpoint_callback(create_endpoint.name, create_endpoint.on_result);
    END IF;
    RETURN signing_secret;
END
$$;

-- on_result => '' removes the callback.
CREATE OR REPLACE FUNCTION outbox.alter_endpoint(name text, url text DEFAULT NULL, topics text[] DEFAULT NULL,
                                      headers jsonb DEFAULT NULL, timeout interval DEFAULT NULL,
                                      rate_limit double precision DEFAULT NULL, max_in_flight integer DEFAULT NULL,
                                      max_attempts integer DEFAULT NULL, retry_base interval DEFAULT NULL,
                                      retry_max interval DEFAULT NULL, filter jsonpath DEFAULT NULL,
                                      disable_after interval DEFAULT NULL, reset text[] DEFAULT NULL,
                                      on_result text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM outbox.alter_endpoint_config(
        alter_endpoint.name, alter_endpoint.url, alter_endpoint.topics, alter_endpoint.headers,
        alter_endpoint.timeout, alter_endpoint.rate_limit, alter_endpoint.max_in_flight, alter_endpoint.max_attempts,
        alter_endpoint.retry_base, alter_endpoint.retry_max, alter_endpoint.filter, alter_endpoint.disable_after,
        alter_endpoint.reset);
    IF alter_endpoint.on_result IS NOT NULL THEN
        PERFORM outbox.set_endpoint_callback(alter_endpoint.name, alter_endpoint.on_result);
    END IF;
END
$$;

-- Sets (or, with NULL or '', removes) an endpoint's callback, as the
-- caller: the role it will run as. Its pending deliveries will call it too.
CREATE OR REPLACE FUNCTION outbox.set_endpoint_callback(endpoint text, on_result text)
RETURNS void
LANGUAGE c
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outbox_set_endpoint_callback';

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
    -- A callback the event or the endpoint names is called again at the
    -- new end (an old one still failing is dropped: the new end replaces it).
    INSERT INTO outbox.deliveries AS d (event_id, endpoint_id, seq, key, callback_state)
    SELECT ev.id, ep.id, ev.seq, ev.key,
           CASE WHEN ev.on_result IS NOT NULL OR ep.on_result IS NOT NULL THEN 'waiting' END
    FROM outbox.endpoints AS ep
    WHERE (target IS NOT NULL AND ep.id = target)
       OR (target IS NULL AND ep.enabled AND outbox.topic_matches(ep.topics, ev.topic)
           AND (ep.id <> 0 OR current_setting('outbox.url') <> ''))
    ON CONFLICT ON CONSTRAINT deliveries_pkey DO UPDATE
    SET state = 'pending', attempts = 0, next_attempt_at = now(), finished_at = NULL,
        callback_state = EXCLUDED.callback_state, callback_attempts = 0, callback_next_at = NULL,
        callback_error = NULL;
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
    -- A callback is called again at the new end (one still failing for the
    -- old end is dropped: the new end replaces it).
    UPDATE outbox.deliveries AS d
    SET state = 'pending', attempts = 0, next_attempt_at = now(), finished_at = NULL,
        callback_state = CASE WHEN EXISTS (SELECT FROM outbox.events AS e
                                           WHERE e.id = d.event_id AND e.on_result IS NOT NULL)
                                   OR EXISTS (SELECT FROM outbox.endpoints AS ep
                                              WHERE ep.id = d.endpoint_id AND ep.on_result IS NOT NULL)
                              THEN 'waiting' END,
        callback_attempts = 0, callback_next_at = NULL, callback_error = NULL
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

-- Ends an event's pending deliveries as dead: to the named endpoint, or to
-- every endpoint. They end as any delivery does: the callback is called
-- (in this transaction), the key's next delivery moves up, each is
-- announced (outbox.delivery.dead). Returns how many it ended.
CREATE OR REPLACE FUNCTION outbox.discard(event_id uuid, endpoint text DEFAULT NULL)
RETURNS integer
LANGUAGE c SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET enable_bitmapscan = off
AS 'MODULE_PATHNAME', 'outbox_discard';
