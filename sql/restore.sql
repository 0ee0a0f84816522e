-- What a restore loads is fitted into what CREATE EXTENSION made (see
-- extension/src/restore.sql). pg_restore runs CREATE EXTENSION and then
-- loads each table; here the superuser inserts the rows COPY would load.
-- The dumped database's transaction ids are around 5,000,000; this
-- instance's are far below.
DROP EXTENSION outbox;
CREATE EXTENSION outbox;

-- pg_dump keeps the rows of every queue table, and the numbering.
SELECT c.relname, x.cond
FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(rel, cond)
JOIN pg_class c ON c.oid = x.rel
WHERE e.extname = 'outbox'
ORDER BY 1;

-- Events that arrive before the dispatch state are held apart: no dispatch
-- reaches a txid above 2^62.
INSERT INTO outbox.events (id, seq, txid, topic, key, payload) OVERRIDING SYSTEM VALUE VALUES
    ('00000000-0000-0000-0000-000000000001', 1, '5000000', 'restored', 'k', '{"n": 1}'),
    ('00000000-0000-0000-0000-000000000002', 2, '5000001', 'restored', 'k', '{"n": 2}'),
    ('00000000-0000-0000-0000-000000000003', 3, '5000002', 'restored', 'k', '{"n": 3}');
SELECT seq, txid >= '4611686018427387904' AS held, txid::text::numeric - 4611686018427387904 AS dumped_txid
FROM outbox.events ORDER BY seq;
SELECT outbox.dispatch(100) AS dispatched_while_held;

-- The dumped dispatch state arrives: it had dispatched 5000000 and 5000001
-- (visible in its done snapshot), not 5000002 (in progress then). It is kept
-- beside this database's own state, and places the held events.
INSERT INTO outbox.dispatch_state (singleton, done_snapshot) VALUES (true, '5000002:5000003:5000002');
SELECT count(*) AS states FROM outbox.dispatch_state;
SELECT restored_at IS NOT NULL AS restored, restored_done_snapshot FROM outbox.dispatch_state;
CREATE FUNCTION pg_temp.placement(txid xid8) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN txid = '1' THEN 'dispatched before the dump'
                WHEN txid >= '4611686018427387904' THEN 'held'
                ELSE 'to dispatch' END
$$;
SELECT seq, pg_temp.placement(txid) FROM outbox.events ORDER BY seq;

-- Events that come after the dispatch state are placed as they arrive; a
-- dispatch pass that was under way counts up to its cursor.
INSERT INTO outbox.dispatch_state (singleton, done_snapshot, target_snapshot, cursor_txid, cursor_seq)
VALUES (true, '5000003:5000003:', '5000006:5000006:', '5000004', 5);
INSERT INTO outbox.events (id, seq, txid, topic, key, payload) OVERRIDING SYSTEM VALUE VALUES
    ('00000000-0000-0000-0000-000000000004', 4, '5000003', 'restored', 'k', '{"n": 4}'),
    ('00000000-0000-0000-0000-000000000005', 5, '5000004', 'restored', 'k', '{"n": 5}'),
    ('00000000-0000-0000-0000-000000000006', 6, '5000004', 'restored', 'k', '{"n": 6}'),
    ('00000000-0000-0000-0000-000000000007', 7, '5000005', 'restored', 'k', '{"n": 7}');
SELECT seq, pg_temp.placement(txid) FROM outbox.events WHERE seq > 3 ORDER BY seq;

-- Dispatch makes deliveries for the events the dumped database had not
-- dispatched, and only for those.
SELECT outbox.dispatch(100) AS dispatched;
SELECT e.seq FROM outbox.deliveries AS d JOIN outbox.events AS e ON e.id = d.event_id ORDER BY e.seq;

-- The numbering comes back after the rows (pg_dump's SEQUENCE SET), so an
-- event enqueued after the restore is numbered after the restored ones: it
-- is not placed, just dispatched, and waits behind them for its key.
SELECT setval('outbox.events_seq_seq', 7);
SELECT outbox.enqueue('after.restore', '{}', key => 'k') IS NOT NULL AS enqueued;
SELECT outbox.dispatch(100) AS dispatched;
SELECT e.topic, d.next_attempt_at = 'infinity' AS parked_behind_restored
FROM outbox.deliveries AS d JOIN outbox.events AS e ON e.id = d.event_id
WHERE e.topic = 'after.restore';

-- The default endpoint's row is made by CREATE EXTENSION; a restored one
-- carries its state into it.
INSERT INTO outbox.endpoints (id, name, url, enabled, disabled_reason, disabled_at)
VALUES (0, 'default', NULL, false, 'disabled before the dump', now());
SELECT id, name, enabled, disabled_reason FROM outbox.endpoints ORDER BY id;

DROP EXTENSION outbox;
CREATE EXTENSION outbox;
