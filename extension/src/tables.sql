-- One row per enqueued event; the payload is stored once, however many
-- endpoints receive it. id is the webhook-id; seq is the enqueue order that
-- per-key ordering follows (a sequence without cache, so that it is
-- monotonic across sessions); txid is the enqueuing transaction, which tells
-- the worker which events became visible since it last looked.
--
-- enqueue() writes this row and nothing else: one heap tuple and two index
-- entries, what a hand-made outbox table costs. The worker turns events into
-- deliveries afterwards (outbox.dispatch), outside the producer's transaction.
CREATE TABLE outbox.events (
    id          uuid        NOT NULL PRIMARY KEY,
    seq         bigint      NOT NULL GENERATED ALWAYS AS IDENTITY,
    txid        xid8        NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    topic       text        NOT NULL,
    key         text,
    payload     jsonb       NOT NULL,
    headers     jsonb,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- The callback this event names (enqueue(..., on_result)), in
    -- regprocedure's output form, and the role that named it, which it runs
    -- as. Text, not regprocedure: pg_upgrade refuses user tables with
    -- regprocedure columns, and a dump must load where the function or role
    -- is missing (the callback then fails when it runs, visibly).
    on_result       text,
    on_result_role  text
);

-- What dispatch scans: events by enqueuing transaction.
CREATE INDEX events_dispatch ON outbox.events (txid, seq);

-- What a callback is called with when a delivery ends (see README,
-- "Callbacks"): the event, the endpoint's name, the final state
-- ('delivered' or 'dead'), the attempts, the last HTTP status, the response
-- body (as jsonb when it is JSON, and as text) and the response headers
-- (lower-case names).
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

-- Webhook endpoints. Row 0 is the default endpoint, whose URL and secret
-- are outbox.url and outbox.secret in postgresql.conf; it receives every
-- topic and can be disabled and enabled like the others.
CREATE TABLE outbox.endpoints (
    id              integer     NOT NULL PRIMARY KEY,
    name            text        NOT NULL UNIQUE
                    CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
    url             text        CHECK ((id = 0) = (url IS NULL)),
    topics          text[]      NOT NULL DEFAULT '{*}',
    headers         jsonb,
    timeout         interval    CHECK (timeout > interval '0'),
    enabled         boolean     NOT NULL DEFAULT true,
    disabled_reason text,
    disabled_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- The first of its failed attempts in a row, once it counts as failing
    -- (outbox.note_endpoint_health); NULL: not failing. Not part of its
    -- configuration: changing it does not touch updated_at.
    failing_since   timestamptz,
    -- Its delivery policy; NULL: the outbox.* setting (see create_endpoint).
    -- rate_limit (requests per second) and max_in_flight (requests at once)
    -- hold across all workers; NULL: no limit, and a fair share of each
    -- worker's outbox.max_in_flight.
    rate_limit      double precision CHECK (rate_limit > 0),
    max_in_flight   integer     CHECK (max_in_flight BETWEEN 1 AND 10000),
    max_attempts    integer     CHECK (max_attempts BETWEEN 1 AND 1000),
    retry_base      interval    CHECK (retry_base > interval '0'),
    retry_max       interval    CHECK (retry_max > interval '0'),
    -- An SQL/JSON path predicate on the payload: events that do not match
    -- get no delivery here; errors while evaluating it are counted.
    filter          jsonpath,
    filter_errors   bigint      NOT NULL DEFAULT 0,
    -- Disabled once every attempt has failed for this long; NULL: never.
    disable_after   interval    DEFAULT '5 days' CHECK (disable_after > interval '0'),
    -- The callback of its deliveries (an event's own wins) and the role that
    -- set it (alter_endpoint(..., on_result)), as on outbox.events.
    on_result       text,
    on_result_role  text
);
CREATE SEQUENCE outbox.endpoints_id_seq AS integer START 1 OWNED BY outbox.endpoints.id;
ALTER TABLE outbox.endpoints ALTER COLUMN id SET DEFAULT pg_catalog.nextval('outbox.endpoints_id_seq');
INSERT INTO outbox.endpoints (id, name, url) VALUES (0, 'default', NULL);

-- Signing secrets, apart from the endpoints so that no role can read them
-- (admins get a secret only from the function that sets it). During a
-- rotation an endpoint has two: the new one (expires_at NULL) and the old one
-- until expires_at; requests carry a signature for each.
CREATE TABLE outbox.endpoint_secrets (
    endpoint_id integer     NOT NULL REFERENCES outbox.endpoints (id) ON DELETE CASCADE,
    secret      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    expires_at  timestamptz,
    PRIMARY KEY (endpoint_id, created_at)
);

-- One row per (event, endpoint), made by dispatch: its own attempts,
-- schedule and final state. endpoint_id 0 is the default endpoint, outbox.url. next_attempt_at doubles
-- as the lease: a claim moves it into the future, so a crashed worker's
-- deliveries come back by themselves. seq and key are copied from the event
-- so that the claim's per-key check needs no join.
CREATE TABLE outbox.deliveries (
    event_id        uuid        NOT NULL,
    endpoint_id     integer     NOT NULL,
    seq             bigint      NOT NULL,
    key             text,
    state           text        NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    last_status     integer,
    last_error      text,
    last_duration   interval,
    last_response   text,
    finished_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Its callback (the event's on_result, or the endpoint's): NULL, none;
    -- 'waiting', to be called when the delivery ends; 'done', called and
    -- committed with the outcome; 'pending', failed and to be called again
    -- at callback_next_at; 'dead', failed outbox.callback_max_attempts times.
    callback_state      text CHECK (callback_state IN ('waiting', 'pending', 'done', 'dead')),
    callback_attempts   integer NOT NULL DEFAULT 0,
    callback_next_at    timestamptz,
    callback_error      text,
    -- The response headers of its last attempt, kept for its callback.
    last_response_headers jsonb,
    PRIMARY KEY (event_id, endpoint_id),
    CHECK ((state = 'pending') = (finished_at IS NULL))
) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05);

-- What the claim scans: only pending rows, in due order, so that its cost
-- does not grow with delivered history or with the backlog.
CREATE INDEX deliveries_due ON outbox.deliveries (endpoint_id, next_attempt_at, seq)
    WHERE state = 'pending';

-- Per-key order: "is there an earlier pending delivery of this key?"
CREATE INDEX deliveries_key_order ON outbox.deliveries (endpoint_id, key, seq)
    WHERE state = 'pending' AND key IS NOT NULL;

-- Callbacks to call again, by due time.
CREATE INDEX deliveries_callbacks_due ON outbox.deliveries (callback_next_at)
    WHERE callback_state = 'pending';

-- Per-key order behind a callback: "is there an earlier delivery of this
-- key whose callback has not committed yet?" (and the callbacks that died,
-- for the statistics).
CREATE INDEX deliveries_callbacks ON outbox.deliveries (endpoint_id, key, seq)
    WHERE callback_state IN ('pending', 'dead');

-- What pruning scans: finished rows, oldest first.
CREATE INDEX deliveries_finished ON outbox.deliveries (state, finished_at)
    WHERE state <> 'pending';

ALTER TABLE outbox.events SET (autovacuum_vacuum_scale_factor = 0.02,
                               autovacuum_vacuum_insert_scale_factor = 0.05);


-- How far dispatch has come, as transaction snapshots (the technique of
-- PgQ): every event whose transaction is visible in done_snapshot has its
-- deliveries. A pass works towards target_snapshot in batches, remembering
-- the last (txid, seq) it handled. One row; its row lock serializes
-- dispatchers.
CREATE TABLE outbox.dispatch_state (
    singleton       boolean     NOT NULL PRIMARY KEY DEFAULT true CHECK (singleton),
    done_snapshot   pg_snapshot,            -- NULL: nothing dispatched yet
    target_snapshot pg_snapshot,            -- NULL: no pass under way
    cursor_txid     xid8,
    cursor_seq      bigint,
    -- After a restore (pg_dump / pg_restore), the dispatch state of the
    -- dumped database, whose transaction ids mean nothing here: which of the
    -- restored events it had dispatched (see restore.sql). restored_at NULL:
    -- nothing was restored.
    restored_at             timestamptz,
    restored_done_snapshot  pg_snapshot,
    restored_target_snapshot pg_snapshot,
    restored_cursor_txid    xid8,
    restored_cursor_seq     bigint
);
-- Nothing is dispatched yet, and every event to come is new: its
-- transaction is not older than the oldest one running now (an event
-- enqueued in the transaction that creates the extension included). A NULL
-- done_snapshot would mean "dispatch every visible event", which would
-- include restored events that were dispatched before the dump.
INSERT INTO outbox.dispatch_state (done_snapshot)
SELECT pg_catalog.format('%s:%s:', s.xmin, s.xmin)::pg_catalog.pg_snapshot
FROM (SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()) AS xmin) AS s;

-- Attempt history: one row per attempt (outbox.log_attempts: none,
-- failures, all), written by outbox.record(), pruned after
-- outbox.attempt_retention.
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

-- What pruning scans: oldest first.
CREATE INDEX attempts_started ON outbox.attempts (started_at);

-- Idempotency keys (idempotency.sql): the request a key was first used for
-- (its fingerprint), the answer stored when it completed, and when it is
-- forgotten (pruned by the worker).
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
