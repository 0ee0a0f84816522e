-- The shop's schema; run.sh applies it as the superuser to a fresh database.
CREATE EXTENSION outbox;

CREATE TABLE orders (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item       text NOT NULL,
    quantity   int NOT NULL CHECK (quantity BETWEEN 1 AND 10),
    -- The state machine: pending -> confirmed, moved only by the webhook route.
    status     text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per webhook processed. The primary key is the dedupe: a second
-- delivery of the same webhook-id (outbox delivers at least once) finds its
-- row, even while the first delivery's transaction is still open.
CREATE TABLE webhook_receipts (
    webhook_id  text PRIMARY KEY,
    topic       text NOT NULL,
    order_id    bigint NOT NULL REFERENCES orders,
    traceparent text,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- The application's role: it writes orders and enqueues events, nothing more.
CREATE ROLE shop LOGIN;
GRANT outbox_writer TO shop;
GRANT SELECT, INSERT, UPDATE ON orders TO shop;
GRANT SELECT, INSERT ON webhook_receipts TO shop;
