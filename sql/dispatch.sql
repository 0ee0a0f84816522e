-- outbox.dispatch(): the worker's step that turns newly committed events into
-- deliveries. outbox.url is not set in this instance, so the worker does not
-- dispatch by itself and each call here is deterministic.
TRUNCATE outbox.events, outbox.deliveries;

-- Nobody but the extension's owner may call it.
SELECT has_function_privilege('outbox_writer', 'outbox.dispatch(integer, boolean)', 'EXECUTE') AS writer,
       has_function_privilege('outbox_admin', 'outbox.dispatch(integer, boolean)', 'EXECUTE') AS admin,
       has_function_privilege('public', 'outbox.dispatch(integer, boolean)', 'EXECUTE') AS public;

-- Committed events are dispatched once, in enqueue order, as pending
-- deliveries to the default endpoint (0), with the event's seq and key.
SELECT outbox.enqueue('t.a', '{"n": 1}', key => 'k1') IS NOT NULL;
SELECT outbox.enqueue('t.a', '{"n": 2}', key => 'k1') IS NOT NULL;
SELECT outbox.enqueue('t.a', '{"n": 3}') IS NOT NULL;
SELECT outbox.dispatch(100) AS dispatched;
SELECT outbox.dispatch(100) AS dispatched_again;
-- The second event of key k1 is parked behind the first (next_attempt_at
-- 'infinity') until the first is recorded delivered or dead.
SELECT e.payload, d.endpoint_id, d.state, d.attempts, d.key, d.seq = e.seq AS same_seq,
       d.next_attempt_at = 'infinity' AS parked
FROM outbox.deliveries d JOIN outbox.events e ON e.id = d.event_id
ORDER BY d.seq;
SELECT outbox.record(ARRAY[e.id], ARRAY[0], ARRAY[0], ARRAY['delivered'], ARRAY[0::bigint], ARRAY[204],
                     ARRAY[NULL::text], ARRAY[1000::bigint], ARRAY[NULL::text]) AS recorded
FROM outbox.events e WHERE e.payload = '{"n": 1}';
SELECT e.payload, d.state, d.next_attempt_at = 'infinity' AS parked
FROM outbox.deliveries d JOIN outbox.events e ON e.id = d.event_id
WHERE d.key = 'k1' ORDER BY d.seq;
-- A lost wake-up (parked head) is repaired by the sweep.
UPDATE outbox.deliveries SET next_attempt_at = 'infinity' WHERE key = 'k1' AND state = 'pending';
SELECT outbox.unpark_heads() AS moved_up;
SELECT count(*) AS parked FROM outbox.deliveries WHERE next_attempt_at = 'infinity';

-- A rolled-back transaction's events never become deliveries.
BEGIN;
SELECT outbox.enqueue('t.rolled_back', '{}') IS NOT NULL;
ROLLBACK;
SELECT outbox.dispatch(100) AS dispatched;

-- Batches: a pass larger than the limit continues where it stopped.
SELECT count(outbox.enqueue('t.batch', jsonb_build_object('i', i))) FROM generate_series(1, 5) AS i;
SELECT outbox.dispatch(2) AS first, outbox.dispatch(2) AS second, outbox.dispatch(2) AS third,
       outbox.dispatch(2) AS fourth;
SELECT count(*) AS batch_deliveries, count(DISTINCT event_id) AS distinct_events
FROM outbox.deliveries d JOIN outbox.events e ON e.id = d.event_id WHERE e.topic = 't.batch';

-- A prepared transaction is in progress until COMMIT PREPARED: its event is
-- not dispatched before, and is found afterwards through the snapshot's list
-- of in-progress transactions.
BEGIN;
SELECT outbox.enqueue('t.prepared', '{}') IS NOT NULL;
PREPARE TRANSACTION 'outbox_regress_1';
SELECT outbox.enqueue('t.after_prepare', '{}') IS NOT NULL;
SELECT outbox.dispatch(100) AS dispatched_while_prepared;
COMMIT PREPARED 'outbox_regress_1';
SELECT outbox.dispatch(100) AS dispatched_after_commit;
BEGIN;
SELECT outbox.enqueue('t.prepared_rollback', '{}') IS NOT NULL;
PREPARE TRANSACTION 'outbox_regress_2';
SELECT outbox.dispatch(100) AS dispatched;
ROLLBACK PREPARED 'outbox_regress_2';
SELECT outbox.dispatch(100) AS dispatched;
SELECT e.topic, count(d.*) AS deliveries
FROM outbox.events e LEFT JOIN outbox.deliveries d ON d.event_id = e.id
WHERE e.topic LIKE 't.%prepare%' GROUP BY e.topic ORDER BY e.topic;

-- Every event has exactly one delivery, and no delivery lacks its event.
SELECT (SELECT count(*) FROM outbox.events) AS events,
       (SELECT count(*) FROM outbox.deliveries) AS deliveries,
       (SELECT count(*) FROM outbox.deliveries d
        WHERE NOT EXISTS (SELECT 1 FROM outbox.events e WHERE e.id = d.event_id)) AS orphans;

-- Key pipelines: claim(followers => n) brings each keyed head with up to n
-- (shared among the keys) of the deliveries behind it in its key, leased and
-- counted, in seq order. A row another transaction holds ends its key's
-- pipeline there: the row after it is not claimed (no gap).
SELECT outbox.create_endpoint('pipe', 'http://127.0.0.1:9/pipe', '{t.pipe}') IS NOT NULL AS created;
SELECT count(*) AS enqueued
FROM (SELECT outbox.enqueue('t.pipe', jsonb_build_object('n', n), key => 'p' || (n % 2))
      FROM generate_series(0, 7) AS n) AS s;
SELECT outbox.dispatch(100) > 0 AS dispatched;
BEGIN;
SELECT d.key AS locked FROM outbox.deliveries AS d JOIN outbox.events AS e ON e.id = d.event_id
WHERE e.topic = 't.pipe' AND e.payload->>'n' = '5' FOR UPDATE OF d;
PREPARE TRANSACTION 'outbox_regress_pipe';
SELECT e.payload->>'n' AS n, c.key, c.attempt
FROM outbox.claim((SELECT id FROM outbox.endpoints WHERE name = 'pipe'), 10, 60000, followers => 6) AS c
JOIN outbox.events AS e ON e.id = c.event_id
ORDER BY c.seq;
ROLLBACK PREPARED 'outbox_regress_pipe';
-- Everything of both keys is now leased or behind a leased row: nothing more.
SELECT count(*) AS claimed_again
FROM outbox.claim((SELECT id FROM outbox.endpoints WHERE name = 'pipe'), 10, 60000, followers => 6);
SELECT outbox.drop_endpoint('pipe');

-- dispatch_and_lease(): the worker's dispatch, which also leases (attempt
-- counted) up to a limit of each listed endpoint's new deliveries that are
-- due at once, in seq order; parked ones (behind their key) are not leased.
SELECT outbox.create_endpoint('lease', 'http://127.0.0.1:9/lease', '{t.lease}') IS NOT NULL AS created;
SELECT count(*) AS enqueued
FROM (SELECT outbox.enqueue('t.lease', jsonb_build_object('n', n), key => CASE WHEN n >= 2 THEN 'L' END)
      FROM generate_series(0, 4) AS n) AS s;
SELECT d.dispatched, cardinality(d.leased_events) AS leased
FROM outbox.dispatch_and_lease(100, false, 60000,
                               ARRAY[(SELECT id FROM outbox.endpoints WHERE name = 'lease')], ARRAY[3]) AS d;
SELECT e.payload->>'n' AS n, d.key, d.attempts, d.next_attempt_at = 'infinity' AS parked,
       d.next_attempt_at > now() + interval '50 seconds' AND NOT d.next_attempt_at = 'infinity' AS leased
FROM outbox.deliveries AS d JOIN outbox.events AS e ON e.id = d.event_id
WHERE e.topic = 't.lease' ORDER BY d.seq;
-- claimed() reads leased deliveries as claim() returns them.
SELECT e.payload->>'n' AS n, c.attempt, c.key, c.endpoint_id = (SELECT id FROM outbox.endpoints WHERE name = 'lease') AS ours
FROM outbox.claimed((SELECT array_agg(d.event_id) FROM outbox.deliveries AS d WHERE d.attempts = 1 AND d.key IS NULL
                     AND d.endpoint_id = (SELECT id FROM outbox.endpoints WHERE name = 'lease')),
                    (SELECT array_agg(d.endpoint_id) FROM outbox.deliveries AS d WHERE d.attempts = 1 AND d.key IS NULL
                     AND d.endpoint_id = (SELECT id FROM outbox.endpoints WHERE name = 'lease'))) AS c
JOIN outbox.events AS e ON e.id = c.event_id;
SELECT outbox.drop_endpoint('lease');
