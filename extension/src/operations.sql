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
