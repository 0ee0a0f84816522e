-- outbox 0.1.0 -> 0.2.0: how the tables change. The functions, triggers,
-- views and grants of 0.2.0 follow this part (extension/src/*.sql, created
-- or replaced).
\echo Use "ALTER EXTENSION outbox UPDATE" to load this file. \quit

-- Backup and restore (restore.sql): the dumped database's dispatch state.
ALTER TABLE outbox.dispatch_state
    ADD COLUMN restored_at timestamptz,
    ADD COLUMN restored_done_snapshot pg_snapshot,
    ADD COLUMN restored_target_snapshot pg_snapshot,
    ADD COLUMN restored_cursor_txid xid8,
    ADD COLUMN restored_cursor_seq bigint;

-- Operations (operations.sql): failing endpoints, the attempt history.
ALTER TABLE outbox.endpoints ADD COLUMN failing_since timestamptz;

CREATE TABLE outbox.attempts (
    event_id    uuid        NOT NULL,
    endpoint_id integer     NOT NULL,
    attempt     integer     NOT NULL,
    started_at  timestamptz NOT NULL,
    duration    interval,
    status      integer,     -- NULL: no HTTP response
    error       text,
    response    text,        -- the first 4 kB of the response body
    PRIMARY KEY (event_id, endpoint_id, attempt)
) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05);
CREATE INDEX attempts_started ON outbox.attempts (started_at);

-- claim() returns when each delivery was made (for commit-to-2xx latency);
-- record() takes when each attempt started (for the history).
DROP FUNCTION outbox.claim(integer, integer, bigint);
DROP FUNCTION outbox.record(uuid[], integer[], integer[], text[], bigint[], integer[], text[], bigint[], text[]);

-- Per-endpoint control (endpoints.sql, dispatch.sql, delivery.sql).
ALTER TABLE outbox.endpoints
    ADD COLUMN rate_limit double precision CHECK (rate_limit > 0),
    ADD COLUMN max_in_flight integer CHECK (max_in_flight BETWEEN 1 AND 10000),
    ADD COLUMN max_attempts integer CHECK (max_attempts BETWEEN 1 AND 1000),
    ADD COLUMN retry_base interval CHECK (retry_base > interval '0'),
    ADD COLUMN retry_max interval CHECK (retry_max > interval '0'),
    ADD COLUMN filter jsonpath,
    ADD COLUMN filter_errors bigint NOT NULL DEFAULT 0,
    ADD COLUMN disable_after interval DEFAULT '5 days' CHECK (disable_after > interval '0');
DROP FUNCTION outbox.create_endpoint(text, text, text[], text, jsonb, interval);
DROP FUNCTION outbox.alter_endpoint(text, text, text[], jsonb, interval);
DROP FUNCTION outbox.redrive(text, timestamptz);

-- Idempotency keys (idempotency.sql).
CREATE TABLE outbox.idempotency_keys (
    key          text        NOT NULL PRIMARY KEY,
    fingerprint  text,
    response     jsonb,
    holder_txid  xid8        NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    completed_at timestamptz,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX idempotency_keys_expiry ON outbox.idempotency_keys (expires_at);
