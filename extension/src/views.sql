-- The callbacks of an endpoint's deliveries that have not committed:
-- failed and to be called again (pending), or failed for good (dead), and
-- the newest error among them (deliveries_callbacks holds just these).
-- SECURITY DEFINER: pg_monitor reads outbox.stats, not the deliveries.
CREATE OR REPLACE FUNCTION outbox.endpoint_callbacks(endpoint_id integer,
    OUT callbacks_pending bigint, OUT callbacks_dead bigint, OUT last_callback_error text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*) FILTER (WHERE d.callback_state = 'pending'),
           count(*) FILTER (WHERE d.callback_state = 'dead'),
           (array_agg(d.callback_error ORDER BY d.finished_at DESC))[1]
    FROM outbox.deliveries AS d
    WHERE d.callback_state IN ('pending', 'dead') AND d.endpoint_id = endpoint_callbacks.endpoint_id
$$;

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
       ep.failing_since,
       ep.on_result, cb.callbacks_pending, cb.callbacks_dead, cb.last_callback_error
FROM outbox.endpoints AS ep
CROSS JOIN LATERAL outbox.endpoint_callbacks(ep.id) AS cb
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
       ep.enabled, ep.failing_since,
       cb.callbacks_pending, cb.callbacks_dead
FROM outbox.endpoints AS ep
CROSS JOIN LATERAL outbox.endpoint_callbacks(ep.id) AS cb
CROSS JOIN LATERAL outbox.endpoint_gauges(ep.id) AS g
CROSS JOIN LATERAL outbox.endpoint_counters(ep.id) AS c;
