-- The application side of the benchmarks: a business table, and the
-- hand-made outbox table of the usual shape that users write today.
CREATE TABLE orders (
    id          bigserial   PRIMARY KEY,
    customer_id bigint      NOT NULL,
    total       numeric(12, 2) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE plain_outbox (
    id           bigserial   PRIMARY KEY,
    topic        text        NOT NULL,
    key          text,
    payload      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    attempts     integer     NOT NULL DEFAULT 0
);
CREATE INDEX plain_outbox_unpublished ON plain_outbox (id) WHERE published_at IS NULL;
