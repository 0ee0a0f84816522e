-- Endpoints with their state, without secrets.
CREATE OR REPLACE VIEW outbox.endpoint_status AS
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
