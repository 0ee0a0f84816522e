-- Operations: reserved topics, operational events, the attempt history and
-- the statistics view. The worker is paused in this instance; these call
-- dispatch(), claim() and record() as the worker would.
TRUNCATE outbox.events, outbox.deliveries, outbox.attempts;

-- Topics that begin with "outbox." are reserved: applications may not
-- enqueue them.
SELECT outbox.enqueue('outbox.delivery.dead', '{}');
SELECT outbox.enqueue('outbox.anything', '{}');
SELECT outbox.enqueue('outboxes.created', '{}') IS NOT NULL AS a_lookalike_is_fine;
\set VERBOSITY sqlstate
SELECT outbox.enqueue('outbox.endpoint.failing', '{}');
\set VERBOSITY default

-- '*' does not match them; only patterns that name them do.
SELECT p AS pattern, outbox.topic_matches(ARRAY[p], 'outbox.endpoint.disabled') AS matches
FROM unnest(ARRAY['*', 'outbox.*', 'outbox.endpoint.*', 'outbox.delivery.*', 'outbox.endpoint.disabled']) AS p;

-- An ops endpoint subscribes to them; a disabled endpoint is announced to
-- it (and logged), but an event about an endpoint never goes to that one.
SELECT outbox.create_endpoint('ops', 'https://ops.example.com/', topics => '{outbox.*}') ~ '^whsec_' AS ops;
SELECT outbox.create_endpoint('shop', 'https://shop.example.com/') ~ '^whsec_' AS shop;
SELECT outbox.dispatch(100, include_default => false) AS dispatched;  -- outboxes.created: to shop only
SELECT outbox.disable_endpoint('shop', 'closed for the night');
SELECT outbox.disable_endpoint('ops', 'ops is down too');
SELECT outbox.enable_endpoint('ops');
SELECT outbox.dispatch(100, include_default => false) AS dispatched;
SELECT e.topic, e.payload->>'endpoint' AS about, e.payload->>'reason' AS reason, ep.name AS delivered_to
FROM outbox.events AS e
LEFT JOIN outbox.deliveries AS d ON d.event_id = e.id
LEFT JOIN outbox.endpoints AS ep ON ep.id = d.endpoint_id
ORDER BY e.seq, ep.name;
SELECT outbox.emit('order.created', '{}');  -- emit() is for reserved topics only
SELECT has_function_privilege('outbox_admin', 'outbox.emit(text, jsonb)', 'EXECUTE') AS admin_may_emit;

-- record(): an attempt that failed is kept in outbox.attempts (the default
-- outbox.log_attempts is 'failures'), a delivered one is not; a delivery
-- that dies is announced as outbox.delivery.dead, to ops.
SELECT outbox.enable_endpoint('shop');
SELECT outbox.enqueue('order.created', '{"n": 1}', key => 'o-1') AS ev1 \gset
SELECT outbox.enqueue('order.created', '{"n": 2}') AS ev2 \gset
SELECT outbox.dispatch(100, include_default => false) AS dispatched;
SELECT count(*) AS claimed FROM outbox.claim((SELECT id FROM outbox.endpoints WHERE name = 'shop'), 10, 60000);
SELECT outbox.record(ARRAY[:'ev1', :'ev2']::uuid[],
                     ARRAY[(SELECT id FROM outbox.endpoints WHERE name = 'shop'),
                           (SELECT id FROM outbox.endpoints WHERE name = 'shop')],
                     ARRAY[1, 1], ARRAY['dead', 'delivered'], ARRAY[0, 0]::bigint[], ARRAY[500, 204],
                     ARRAY['HTTP 500', NULL], ARRAY[120000, 3000]::bigint[], ARRAY['oops', NULL],
                     ARRAY[1767225600000000, 1767225600500000]::bigint[]) AS recorded;
SELECT a.event_id = :'ev1' AS first_event, a.attempt, a.started_at AT TIME ZONE 'UTC' AS started_at_utc,
       a.duration, a.status, a.error, a.response
FROM outbox.attempts AS a;
SELECT e.topic, e.payload - 'event_id' AS payload, e.payload->>'event_id' = :'ev1' AS names_the_event
FROM outbox.events AS e WHERE e.topic = 'outbox.delivery.dead';
SELECT outbox.dispatch(100, include_default => false) AS dispatched;
SELECT ep.name FROM outbox.deliveries AS d JOIN outbox.events AS e ON e.id = d.event_id
JOIN outbox.endpoints AS ep ON ep.id = d.endpoint_id WHERE e.topic = 'outbox.delivery.dead';

-- The worker's word on an endpoint's health, told once.
SELECT outbox.note_endpoint_health((SELECT id FROM outbox.endpoints WHERE name = 'shop'), true,
                                   '2026-01-01 00:00:00+00', 5, 'HTTP 503') AS told;
SELECT outbox.note_endpoint_health((SELECT id FROM outbox.endpoints WHERE name = 'shop'), true,
                                   '2026-01-01 00:00:00+00', 6, 'HTTP 503') AS told_again;
SELECT outbox.note_endpoint_health((SELECT id FROM outbox.endpoints WHERE name = 'shop'), false, NULL, 0, '') AS recovered;
SELECT e.topic, e.payload - 'recovered_at' AS payload FROM outbox.events AS e
WHERE e.topic IN ('outbox.endpoint.failing', 'outbox.endpoint.recovered') ORDER BY e.seq;

-- The statistics view: one row per endpoint, gauges from the queue,
-- counters from the workers (none have run here).
SELECT endpoint, pending, due, retrying, in_flight, dead, lag >= interval '0' AS lag_ok, delivered,
       failed_attempts, consecutive_failures, latency_p50, stats_reset IS NOT NULL AS has_reset_time
FROM outbox.stats ORDER BY endpoint;
SELECT outbox.stats_reset();
SELECT has_table_privilege('pg_monitor', 'outbox.stats', 'SELECT') AS monitor_reads_stats,
       has_table_privilege('pg_monitor', 'outbox.deliveries', 'SELECT') AS monitor_reads_deliveries,
       has_table_privilege('outbox_admin', 'outbox.attempts', 'SELECT') AS admin_reads_attempts,
       has_table_privilege('outbox_writer', 'outbox.stats', 'SELECT') AS writer_reads_stats,
       has_function_privilege('outbox_admin', 'outbox.stats_reset()', 'EXECUTE') AS admin_resets,
       has_function_privilege('pg_monitor', 'outbox.stats_reset()', 'EXECUTE') AS monitor_resets;
CREATE ROLE regress_outbox_monitor LOGIN IN ROLE pg_monitor;
SET ROLE regress_outbox_monitor;
SELECT count(*) AS endpoints_seen FROM outbox.stats;
RESET ROLE;
DROP ROLE regress_outbox_monitor;

SELECT outbox.drop_endpoint('ops');
SELECT outbox.drop_endpoint('shop');
TRUNCATE outbox.events, outbox.deliveries, outbox.attempts;
