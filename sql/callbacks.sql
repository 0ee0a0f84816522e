-- Callbacks (README, "Callbacks"): a function an event or its endpoint
-- names, called once when a delivery ends, in the transaction that records
-- the end, as the role that named it. The worker is paused in this
-- instance; these call dispatch(), claim(), record() and discard() as the
-- worker (or an external relay) would.
TRUNCATE outbox.events, outbox.deliveries, outbox.attempts;
CREATE ROLE regress_cb_app IN ROLE outbox_writer;
CREATE ROLE regress_cb_admin IN ROLE outbox_admin;
CREATE SCHEMA app;
GRANT USAGE ON SCHEMA app TO regress_cb_app, regress_cb_admin;
CREATE TABLE app.log (n serial, fn text, event_id uuid, topic text, key text, endpoint text, state text,
                      attempts int, status int, response jsonb, response_text text, location text,
                      run_as name, search_path text);
GRANT INSERT ON app.log TO regress_cb_app, regress_cb_admin;
GRANT USAGE ON SEQUENCE app.log_n_seq TO regress_cb_app, regress_cb_admin;
CREATE TABLE app.flags (failing boolean);
INSERT INTO app.flags VALUES (true);
GRANT SELECT ON app.flags TO regress_cb_app;

-- Writes what it got, who it ran as and with which search_path, and
-- enqueues a follow-up event: both commit with the delivery's end or not at all.
CREATE FUNCTION app.on_result(r outbox.delivery_result) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO app.log (fn, event_id, topic, key, endpoint, state, attempts, status, response, response_text,
                         location, run_as, search_path)
    VALUES ('on_result', r.event_id, r.topic, r.key, r.endpoint, r.state, r.attempts, r.status, r.response,
            r.response_text, r.response_headers ->> 'location', current_user, current_setting('search_path'));
    PERFORM outbox.enqueue('order.followed_up', jsonb_build_object('after', r.event_id));
END
$$;
CREATE FUNCTION app.endpoint_result(r outbox.delivery_result) RETURNS void LANGUAGE sql AS $$
    INSERT INTO app.log (fn, event_id, topic, state, run_as) VALUES ('endpoint_result', r.event_id, r.topic, r.state, current_user)
$$;
-- Fails while app.flags says so: after writing, so that the rollback shows.
CREATE FUNCTION app.flaky(r outbox.delivery_result) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO app.log (fn, event_id, state, run_as) VALUES ('flaky', r.event_id, r.state, current_user);
    IF (SELECT failing FROM app.flags) THEN
        RAISE EXCEPTION 'the shop is closed';
    END IF;
END
$$;
CREATE FUNCTION app.private(r outbox.delivery_result) RETURNS void LANGUAGE sql AS $$ SELECT $$;
REVOKE EXECUTE ON FUNCTION app.private(outbox.delivery_result) FROM PUBLIC;
CREATE FUNCTION app.wrong(r jsonb) RETURNS void LANGUAGE sql AS $$ SELECT $$;
CREATE PROCEDURE app.proc(r outbox.delivery_result) LANGUAGE sql AS $$ SELECT $$;

SELECT outbox.create_endpoint('cb', 'https://cb.example.com/') ~ '^whsec_' AS cb;
CREATE FUNCTION pg_temp.cb() RETURNS integer LANGUAGE sql AS $$ SELECT id FROM outbox.endpoints WHERE name = 'cb' $$;
-- Records one attempt's result for a delivery to cb, as the worker would.
CREATE FUNCTION pg_temp.record(ev uuid, state text, status int, response text DEFAULT NULL,
                               headers jsonb DEFAULT NULL) RETURNS integer LANGUAGE sql AS $$
    SELECT outbox.record(ARRAY[ev], ARRAY[pg_temp.cb()],
                         ARRAY[(SELECT d.attempts FROM outbox.deliveries AS d
                                WHERE d.event_id = ev AND d.endpoint_id = pg_temp.cb())],
                         ARRAY[state], ARRAY[1000::bigint], ARRAY[status], ARRAY[NULL::text], ARRAY[1000::bigint],
                         ARRAY[response], NULL, ARRAY[headers])
$$;

-- Naming a callback: a function of one outbox.delivery_result, named with
-- its schema, that the naming role may execute.
SET ROLE regress_cb_app;
SELECT outbox.enqueue('order.created', '{}', on_result => 'on_result');
SELECT outbox.enqueue('order.created', '{}', on_result => 'app.missing');
SELECT outbox.enqueue('order.created', '{}', on_result => 'app.wrong');
SELECT outbox.enqueue('order.created', '{}', on_result => 'app.proc');
SELECT outbox.enqueue('order.created', '{}', on_result => 'app.private');
\set VERBOSITY sqlstate
SELECT outbox.enqueue('order.created', '{}', on_result => 'app.private');
\set VERBOSITY default
RESET ROLE;
SELECT count(*) AS nothing_enqueued FROM outbox.events;
SET ROLE regress_cb_admin;
SELECT outbox.alter_endpoint('cb', on_result => 'app.private');
RESET ROLE;

-- An event's callback, called when its delivery ends, as the role that
-- enqueued it (not the superuser recording), with a safe search_path; its
-- response as jsonb when it is JSON, and the response's headers.
SET ROLE regress_cb_app;
SELECT outbox.enqueue('order.created', '{"n": 1}', key => 'o-1', on_result => 'app.on_result') AS ev1 \gset
RESET ROLE;
SELECT on_result, on_result_role FROM outbox.events WHERE id = :'ev1';
SELECT outbox.dispatch(100, include_default => false) AS dispatched;
SELECT callback_state, callback_attempts FROM outbox.deliveries WHERE event_id = :'ev1';
SELECT count(*) AS claimed FROM outbox.claim(pg_temp.cb(), 10, 60000);
SELECT pg_temp.record(:'ev1', 'delivered', 201, '{"payment_id": "pi_123"}',
                      '{"location": "/payments/pi_123", "content-type": "application/json"}') AS recorded;
SELECT fn, event_id = :'ev1' AS same_event, topic, key, endpoint, state, attempts, status, response, response_text,
       location, run_as, search_path
FROM app.log;
SELECT state, callback_state, callback_attempts, callback_error FROM outbox.deliveries WHERE event_id = :'ev1';
SELECT topic, payload ->> 'after' = :'ev1' AS after_it FROM outbox.events WHERE topic = 'order.followed_up';
-- Called once: the same result recorded again (a second worker's late copy) changes nothing.
SELECT pg_temp.record(:'ev1', 'delivered', 201, '{}') AS recorded_again;
SELECT count(*) AS calls FROM app.log;

-- A response that is not JSON comes as text only; a dead delivery calls too.
TRUNCATE app.log;
SET ROLE regress_cb_app;
SELECT outbox.enqueue('order.created', '{"n": 2}', on_result => 'app.on_result') AS ev2 \gset
RESET ROLE;
SELECT outbox.dispatch(100, include_default => false) AS dispatched;
SELECT count(*) AS claimed FROM outbox.claim(pg_temp.cb(), 10, 60000);
SELECT pg_temp.record(:'ev2', 'dead', 500, '<html>oops</html>') AS recorded;
SELECT fn, state, status, response, response_text FROM app.log;

-- An endpoint's callback, set by an admin, runs as that admin; an event's
-- own callback wins over it.
TRUNCATE app.log;
SET ROLE regress_cb_admin;
SELECT outbox.alter_endpoint('cb', on_result => 'app.endpoint_result');
RESET ROLE;
SELECT s.on_result, ep.on_result_role FROM outbox.endpoint_status AS s JOIN outbox.endpoints AS ep USING (name)
WHERE name = 'cb';
SELECT outbox.enqueue('order.plain', '{}') AS ev3 \gset
SET ROLE regress_cb_app;
SELECT outbox.enqueue('order.own', '{}', on_result => 'app.on_result') AS ev4 \gset
RESET ROLE;
SELECT outbox.dispatch(100, include_default => false) AS dispatched;
SELECT count(*) AS claimed FROM outbox.claim(pg_temp.cb(), 10, 60000);
SELECT pg_temp.record(:'ev3', 'delivered', 204) + pg_temp.record(:'ev4', 'delivered', 204) AS recorded;
SELECT fn, topic, run_as FROM app.log ORDER BY n;

-- A failing callback is rolled back alone: the delivery's end is recorded,
-- the callback is pending (with its error, to be called again), and the
-- next delivery of its key waits for it.
TRUNCATE app.log;
SELECT outbox.alter_endpoint('cb', on_result => '');
SET ROLE regress_cb_app;
SELECT outbox.enqueue('order.step', '{"step": 1}', key => 'saga-1', on_result => 'app.flaky') AS step1 \gset
SELECT outbox.enqueue('order.step', '{"step": 2}', key => 'saga-1', on_result => 'app.flaky') AS step2 \gset
RESET ROLE;
SELECT outbox.dispatch(100, include_default => false) AS dispatched;
-- A pipeline stops at a delivery with a callback: step 2 is not claimed with step 1.
SELECT topic, key, payload FROM outbox.claim(pg_temp.cb(), 10, 60000, followers => 10) WHERE key IS NOT NULL;
SELECT pg_temp.record(:'step1', 'delivered', 200) AS recorded;
SELECT count(*) AS rolled_back_writes FROM app.log;
SELECT state, callback_state, callback_attempts, callback_error, callback_next_at > now() AS later
FROM outbox.deliveries WHERE event_id = :'step1';
SELECT callbacks_pending, callbacks_dead, last_callback_error FROM outbox.endpoint_status WHERE name = 'cb';
SELECT callbacks_pending, callbacks_dead FROM outbox.stats WHERE endpoint = 'cb';
SELECT outbox.unpark_heads() AS unparked;
SELECT count(*) AS claimed_behind_the_callback FROM outbox.claim(pg_temp.cb(), 10, 60000);
SELECT next_attempt_at = 'infinity' AS parked FROM outbox.deliveries WHERE event_id = :'step2';

-- Discarding ends a delivery as dead, through the same recording: its
-- callback is called (here it fails too, and is pending).
SELECT outbox.discard(:'step2', 'cb') AS discarded;
SELECT state, last_error, callback_state, callback_attempts FROM outbox.deliveries WHERE event_id = :'step2';
SELECT count(*) AS announced FROM outbox.events WHERE topic = 'outbox.delivery.dead' AND payload ->> 'event_id' = :'step2';
SELECT outbox.discard(:'step2') AS discarded_again;

-- Redrive makes the dead delivery pending again: its callback waits for
-- the new end (the failing call for the old one is dropped).
SELECT outbox.redrive('cb') AS redriven;
SELECT state, callback_state, callback_attempts, callback_error FROM outbox.deliveries WHERE event_id = :'step2';

-- EXECUTE is checked again when the callback runs, as the naming role.
UPDATE app.flags SET failing = false;
SET ROLE regress_cb_app;
SELECT outbox.enqueue('order.created', '{}', on_result => 'app.on_result') AS ev5 \gset
RESET ROLE;
REVOKE EXECUTE ON FUNCTION app.on_result(outbox.delivery_result) FROM PUBLIC;
SELECT outbox.dispatch(100, include_default => false) AS dispatched;
SELECT count(*) > 0 AS claimed FROM outbox.claim(pg_temp.cb(), 10, 60000);
SELECT pg_temp.record(:'ev5', 'delivered', 200) AS recorded;
SELECT callback_state, callback_error FROM outbox.deliveries WHERE event_id = :'ev5';
GRANT EXECUTE ON FUNCTION app.on_result(outbox.delivery_result) TO PUBLIC;

DELETE FROM outbox.deliveries;
DELETE FROM outbox.events;
SELECT outbox.drop_endpoint('cb');
DROP SCHEMA app CASCADE;
DROP ROLE regress_cb_app;
DROP ROLE regress_cb_admin;
