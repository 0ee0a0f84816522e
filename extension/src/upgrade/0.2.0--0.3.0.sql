-- outbox 0.2.0 -> 0.3.0: how the tables change. The functions, triggers,
-- views and grants of 0.3.0 follow this part (extension/src/*.sql, created
-- or replaced).
\echo Use "ALTER EXTENSION outbox UPDATE" to load this file. \quit

-- Issue 23: no table changes. outbox.claim(), record(), dispatch_and_lease()
-- and unpark_heads() become C functions that run the worker's own
-- statements; CREATE OR REPLACE (in the files that follow) keeps their
-- signatures and grants.

-- Issue 25: callbacks. The columns come last, as tables.sql has them.
CREATE TYPE outbox.delivery_result AS (
    event_id         uuid,
    topic            text,
    key              text,
    payload          jsonb,
    headers          jsonb,
    endpoint         text,
    state            text,
    attempts         integer,
    status           integer,
    response         jsonb,
    response_text    text,
    response_headers jsonb
);
ALTER TABLE outbox.events ADD COLUMN on_result text, ADD COLUMN on_result_role text;
ALTER TABLE outbox.endpoints ADD COLUMN on_result text, ADD COLUMN on_result_role text;
ALTER TABLE outbox.deliveries
    ADD COLUMN callback_state text CHECK (callback_state IN ('waiting', 'pending', 'done', 'dead')),
    ADD COLUMN callback_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN callback_next_at timestamptz,
    ADD COLUMN callback_error text,
    ADD COLUMN last_response_headers jsonb;
CREATE INDEX deliveries_callbacks_due ON outbox.deliveries (callback_next_at)
    WHERE callback_state = 'pending';
CREATE INDEX deliveries_callbacks ON outbox.deliveries (endpoint_id, key, seq)
    WHERE callback_state IN ('pending', 'dead');

-- Functions whose arguments change are made again (the files that follow);
-- grants.sql grants them as before. create_endpoint() and alter_endpoint()
-- become the callers' own (SECURITY INVOKER) around the definer functions
-- that write the endpoint, so that the role naming a callback is known.
DROP FUNCTION outbox.enqueue(text, jsonb, text, jsonb, uuid);
DROP FUNCTION outbox.create_endpoint(text, text, text[], text, jsonb, interval, double precision, integer, integer,
                                     interval, interval, jsonpath, interval);
DROP FUNCTION outbox.alter_endpoint(text, text, text[], jsonb, interval, double precision, integer, integer,
                                    interval, interval, jsonpath, interval, text[]);
DROP FUNCTION outbox.record(uuid[], integer[], integer[], text[], bigint[], integer[], text[], bigint[], text[],
                            bigint[]);
-- endpoint_status and stats gain columns at their end: CREATE OR REPLACE
-- keeps them.
