-- outbox.enqueue(): what it writes, what it refuses, and that refusals write
-- nothing. outbox.url is not set here, so the worker leaves events alone.
SELECT outbox.enqueue('order.created', '{"id": 42, "total": 9.5}', key => 'order-42') IS NOT NULL AS enqueued;

-- One row in events and nothing else: deliveries are made by the worker.
SELECT e.topic, e.key, e.payload, e.headers, e.txid IS NOT NULL AS has_txid
FROM outbox.events e;
SELECT count(*) AS deliveries FROM outbox.deliveries;

-- Ids are UUIDv7 (time-ordered) and returned as the webhook-id.
SELECT uuid_send(id)::text ~ '^\\x[0-9a-f]{12}7' AS is_v7 FROM outbox.events;

-- Headers are stored; {} means none.
SELECT outbox.enqueue('order.created', '{}', headers => '{"x-tenant": "acme", "X-Trace": "abc"}') IS NOT NULL;
SELECT outbox.enqueue('order.created', '{}', headers => '{}') IS NOT NULL;
SELECT headers FROM outbox.events ORDER BY seq OFFSET 1;

-- Idempotent enqueue: an existing event_id returns that id, writes nothing.
SELECT outbox.enqueue('invoice.paid', '{"n": 1}', event_id => '01890a5d-ac96-774b-bcce-b302099a8057');
SELECT outbox.enqueue('invoice.changed', '{"n": 2}', event_id => '01890a5d-ac96-774b-bcce-b302099a8057');
SELECT topic, payload FROM outbox.events WHERE id = '01890a5d-ac96-774b-bcce-b302099a8057';
SELECT count(*) FROM outbox.deliveries WHERE event_id = '01890a5d-ac96-774b-bcce-b302099a8057';

-- A rolled-back transaction leaves nothing; so does a rolled-back savepoint.
BEGIN;
SELECT outbox.enqueue('rolled.back', '{}') IS NOT NULL;
ROLLBACK;
BEGIN;
SELECT outbox.enqueue('kept', '{}') IS NOT NULL;
SAVEPOINT s;
SELECT outbox.enqueue('rolled.back', '{}') IS NOT NULL;
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT topic, count(*) FROM outbox.events WHERE topic IN ('rolled.back', 'kept') GROUP BY topic;

-- enqueue() writes its row without a planned INSERT (see event_insert.cpp);
-- everything a planned INSERT does must still happen. The defaults: seq in
-- call order, txid and created_at of the enqueuing transaction.
BEGIN;
SELECT outbox.enqueue('defaults.a', '{}') IS NOT NULL, outbox.enqueue('defaults.b', '{}') IS NOT NULL;
SELECT array_agg(topic ORDER BY seq) AS in_seq_order,
       bool_and(txid = pg_current_xact_id()) AS own_txid,
       bool_and(created_at = now()) AS created_now
  FROM outbox.events WHERE topic LIKE 'defaults.%';
COMMIT;
-- A read-only transaction refuses it, as it refuses an INSERT.
BEGIN READ ONLY;
SELECT outbox.enqueue('read.only', '{}');
ROLLBACK;
-- Indexes a user adds (partial, on an expression) are maintained with the
-- extension's own: amcheck finds every row in every index.
CREATE EXTENSION amcheck;
CREATE INDEX events_user_partial ON outbox.events (topic) WHERE topic LIKE 'user.%';
CREATE INDEX events_user_expression ON outbox.events ((payload ->> 'n'));
SELECT outbox.enqueue('user.indexed', '{"n": "7"}') IS NOT NULL;
SELECT c.relname, bt_index_check(c.oid, heapallindexed => true)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid = 'outbox.events'::regclass ORDER BY c.relname;
DROP INDEX outbox.events_user_partial, outbox.events_user_expression;
DROP EXTENSION amcheck;
-- A trigger on the table fires (enqueue() then writes through a planned
-- INSERT); once dropped, it no longer does.
CREATE TABLE public.enqueue_audit (topic text);
CREATE FUNCTION public.audit_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.enqueue_audit VALUES (NEW.topic);
    RETURN NEW;
END
$$;
CREATE TRIGGER events_audit AFTER INSERT ON outbox.events FOR EACH ROW EXECUTE FUNCTION public.audit_event();
SELECT outbox.enqueue('audited', '{}') IS NOT NULL;
DROP TRIGGER events_audit ON outbox.events;
SELECT outbox.enqueue('not.audited', '{}') IS NOT NULL;
SELECT topic FROM public.enqueue_audit;
SELECT topic FROM outbox.events WHERE topic LIKE '%audited' ORDER BY seq;
DROP TABLE public.enqueue_audit;
DROP FUNCTION public.audit_event();

-- Topic boundaries: 255 characters pass, and the allowed punctuation.
SELECT outbox.enqueue(repeat('t', 255), '{}') IS NOT NULL AS long_topic_ok;
SELECT outbox.enqueue('A1.b_c:d-e', '{}') IS NOT NULL AS punctuation_ok;

-- Everything below is refused, with a message and a hint.
SELECT count(*) AS events_before FROM outbox.events \gset
SELECT outbox.enqueue(NULL, '{}');
SELECT outbox.enqueue('', '{}');
SELECT outbox.enqueue('bad topic!', '{}');
SELECT outbox.enqueue('.leading', '{}');
SELECT outbox.enqueue(repeat('t', 256), '{}');
SELECT outbox.enqueue('ok', NULL);
SELECT outbox.enqueue('ok', '{}', key => '');
SELECT outbox.enqueue('ok', '{}', key => repeat('k', 1025));
SELECT outbox.enqueue('ok', '{}', headers => '[1, 2]');
SELECT outbox.enqueue('ok', '{}', headers => '"x-a: b"');
SELECT outbox.enqueue('ok', '{}', headers => '{"x-a": 1}');
SELECT outbox.enqueue('ok', '{}', headers => '{"x-a": {"b": "c"}}');
SELECT outbox.enqueue('ok', '{}', headers => '{"bad name": "v"}');
SELECT outbox.enqueue('ok', '{}', headers => '{"": "v"}');
SELECT outbox.enqueue('ok', '{}', headers => '{"x-a": "line\r\nInjected: yes"}');
SELECT outbox.enqueue('ok', '{}', headers => '{"x-a": "line\nbreak"}');
SELECT outbox.enqueue('ok', '{}', headers => '{"webhook-id": "forged"}');
SELECT outbox.enqueue('ok', '{}', headers => '{"Webhook-Signature": "v1,forged"}');
SELECT outbox.enqueue('ok', '{}', headers => '{"Content-Type": "text/plain"}');
SELECT outbox.enqueue('ok', '{}', headers => '{"content-length": "1"}');
SELECT outbox.enqueue('ok', '{}', headers => '{"Host": "internal"}');
SELECT outbox.enqueue('ok', '{}', headers => '{"transfer-encoding": "chunked"}');
SET outbox.max_payload_size = 64;
SELECT outbox.enqueue('ok', jsonb_build_object('data', repeat('x', 100)));
SELECT length(jsonb_build_object('d', repeat('x', 55))::text) AS bytes,
       outbox.enqueue('ok', jsonb_build_object('d', repeat('x', 55))) IS NOT NULL AS at_the_limit_ok;
RESET outbox.max_payload_size;
-- Only the call at the limit wrote anything.
SELECT count(*) - :events_before AS new_events FROM outbox.events;

-- The SQLSTATE of each kind of refusal.
CREATE FUNCTION pg_temp.sqlstate_of(topic text, payload jsonb, key text DEFAULT NULL, headers jsonb DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM outbox.enqueue(topic, payload, key, headers);
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
SET outbox.max_payload_size = 64;
SELECT pg_temp.sqlstate_of(NULL, '{}') AS null_topic,
       pg_temp.sqlstate_of('', '{}') AS empty_topic,
       pg_temp.sqlstate_of('a b', '{}') AS bad_topic,
       pg_temp.sqlstate_of('ok', NULL) AS null_payload,
       pg_temp.sqlstate_of('ok', jsonb_build_object('d', repeat('x', 100))) AS large_payload,
       pg_temp.sqlstate_of('ok', '{}', headers => '[]') AS headers_not_object,
       pg_temp.sqlstate_of('ok', '{}', headers => '{"x": "a\nb"}') AS header_crlf,
       pg_temp.sqlstate_of('ok', '{}', headers => '{"webhook-id": "x"}') AS reserved_header;
RESET outbox.max_payload_size;

SELECT count(*) AS events FROM outbox.events;
