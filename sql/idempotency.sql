-- Idempotency keys in the caller's transaction (the concurrent cases are in
-- specs/idempotency.spec), and the trace context of enqueued events.
TRUNCATE outbox.events, outbox.deliveries, outbox.idempotency_keys;

-- A writer may use them; nothing else of the table is theirs.
SELECT has_function_privilege('outbox_writer', 'outbox.idempotency_begin(text, text, interval, boolean)', 'EXECUTE') AS writer_begins,
       has_function_privilege('outbox_writer', 'outbox.idempotency_complete(text, jsonb)', 'EXECUTE') AS writer_completes,
       has_table_privilege('outbox_writer', 'outbox.idempotency_keys', 'SELECT') AS writer_reads_keys,
       has_function_privilege('public', 'outbox.idempotency_begin(text, text, interval, boolean)', 'EXECUTE') AS public_begins;

-- The first request with a key: 'new'; the work and the answer commit together.
BEGIN;
SELECT * FROM outbox.idempotency_begin('order-req-1', fingerprint => 'sha256:abc');
SELECT outbox.enqueue('order.created', '{"order": 1}') IS NOT NULL AS enqueued;
SELECT outbox.idempotency_complete('order-req-1', '{"order_id": 1}');
COMMIT;
-- The same request again: 'completed', with the stored answer.
SELECT * FROM outbox.idempotency_begin('order-req-1', fingerprint => 'sha256:abc');
-- The same key for another request: 'mismatch', nothing written.
SELECT * FROM outbox.idempotency_begin('order-req-1', fingerprint => 'sha256:other');
SELECT count(*) AS keys, count(*) FILTER (WHERE response IS NOT NULL) AS completed FROM outbox.idempotency_keys;

-- A rolled-back request leaves nothing: its key is 'new' again.
BEGIN;
SELECT * FROM outbox.idempotency_begin('order-req-2');
SELECT outbox.idempotency_complete('order-req-2', '{"order_id": 2}');
ROLLBACK;
BEGIN;
SELECT * FROM outbox.idempotency_begin('order-req-2');
ROLLBACK;

-- After its ttl a key is forgotten.
BEGIN;
SELECT * FROM outbox.idempotency_begin('order-req-3', ttl => '1 millisecond');
SELECT outbox.idempotency_complete('order-req-3', '{"order_id": 3}');
COMMIT;
SELECT pg_sleep(0.01);
SELECT * FROM outbox.idempotency_begin('order-req-3');

-- Bad input is an error with a SQLSTATE, and writes nothing.
\set VERBOSITY sqlstate
SELECT * FROM outbox.idempotency_begin(NULL);
SELECT * FROM outbox.idempotency_begin('');
SELECT * FROM outbox.idempotency_begin(repeat('k', 256));
SELECT * FROM outbox.idempotency_begin('ok', ttl => '-1 hour');
SELECT outbox.idempotency_complete('never-begun', '{}');
SELECT outbox.idempotency_complete('order-req-1', '{}');  -- held by a committed transaction, not this one
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM outbox.idempotency_begin('order-req-4');
ROLLBACK;
\set VERBOSITY default
SELECT * FROM outbox.idempotency_begin(repeat('k', 256));
SELECT outbox.idempotency_complete('never-begun', '{}');
SELECT count(*) AS keys FROM outbox.idempotency_keys;

-- Trace context: set for the transaction, it goes with every event enqueued
-- in it, from triggers too; an explicit header wins; a malformed value is
-- refused when it is set.
CREATE TABLE public.orders (id int PRIMARY KEY);
CREATE FUNCTION public.order_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM outbox.enqueue('order.created', jsonb_build_object('id', NEW.id), key => 'order-' || NEW.id);
    RETURN NEW;
END $$;
CREATE TRIGGER order_created AFTER INSERT ON public.orders FOR EACH ROW EXECUTE FUNCTION public.order_created();
BEGIN;
SELECT set_config('outbox.traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', true) IS NOT NULL AS set;
SELECT set_config('outbox.tracestate', 'congo=t61rcWkgMzE', true) IS NOT NULL AS set;
INSERT INTO public.orders VALUES (7);
SELECT outbox.enqueue('order.paid', '{"id": 7}', headers => '{"TraceParent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}') IS NOT NULL AS enqueued;
COMMIT;
SELECT outbox.enqueue('order.shipped', '{"id": 7}') IS NOT NULL AS enqueued_without;
SELECT topic, headers FROM outbox.events WHERE topic LIKE 'order.%' AND payload->>'id' = '7' ORDER BY seq;
SET outbox.traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7';
SET outbox.traceparent = 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
SET outbox.tracestate = 'no value here';
RESET outbox.traceparent;
DROP TABLE public.orders;
DROP FUNCTION public.order_created();
TRUNCATE outbox.events, outbox.deliveries, outbox.idempotency_keys;
