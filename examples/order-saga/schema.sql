-- The order saga, orchestrated in SQL on outbox's callbacks: reserve
-- inventory -> charge payment -> schedule fulfilment; a step that fails
-- compensates the steps before it in reverse order (cancel fulfilment,
-- refund payment, release inventory). Each step is an event to a service;
-- its callback, run by outbox's worker in the transaction that records the
-- delivery's end, moves the saga and enqueues the next request, so a step's
-- result and the saga's next move commit together or not at all.
--
-- Load it as a superuser into a database with the extension (run.sh does);
-- endpoints.sql then points the six topics at the services. The saga runs
-- as role saga_app: it starts sagas, and its callbacks run as it (the role
-- that called enqueue(..., on_result)), with search_path = pg_catalog,
-- pg_temp: every name below is qualified.
CREATE SCHEMA order_saga;

-- The state machine: a saga moves only along these rows; the trigger on
-- sagas refuses any other change of state (check_violation), whoever makes
-- it. A step refused by its service did nothing: the steps before it are
-- compensated. A step that never got an answer (dead after its attempts)
-- may have acted: it is compensated too. Compensations run in reverse
-- order: cancel the shipment, refund the payment, release the stock.
CREATE TABLE order_saga.transitions (
    from_state text NOT NULL,
    to_state   text NOT NULL,
    why        text NOT NULL,
    PRIMARY KEY (from_state, to_state)
);
INSERT INTO order_saga.transitions VALUES
    ('reserving',  'charging',    'stock reserved'),
    ('reserving',  'releasing',   'no answer from inventory: the reservation may exist'),
    ('reserving',  'compensated', 'out of stock: nothing to undo'),
    ('charging',   'scheduling',  'payment charged'),
    ('charging',   'refunding',   'no answer from payment: the charge may exist'),
    ('charging',   'releasing',   'payment declined'),
    ('scheduling', 'completed',   'fulfilment scheduled'),
    ('scheduling', 'cancelling',  'no answer from fulfilment: the shipment may exist'),
    ('scheduling', 'refunding',   'fulfilment refused'),
    ('cancelling', 'refunding',   'fulfilment cancelled'),
    ('refunding',  'releasing',   'payment refunded'),
    ('releasing',  'compensated', 'inventory released');

CREATE TABLE order_saga.sagas (
    id                   bigint PRIMARY KEY,  -- the order's id
    customer             text NOT NULL,
    sku                  text NOT NULL,
    quantity             int NOT NULL CHECK (quantity > 0),
    amount_cents         bigint NOT NULL CHECK (amount_cents > 0),
    state                text NOT NULL DEFAULT 'reserving',
    reservation_id       text,
    payment_id           text,
    shipment_id          text,
    failure              text,               -- why it compensated
    compensation_resends int NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Every move, as the trigger saw it (written before the saga's row, so no
-- foreign key).
CREATE TABLE order_saga.history (
    saga_id    bigint NOT NULL,
    from_state text,
    to_state   text NOT NULL,
    at         timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX ON order_saga.history (saga_id);

CREATE FUNCTION order_saga.check_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.state <> 'reserving' THEN
            RAISE EXCEPTION 'a saga starts in state reserving, not %', NEW.state
                USING ERRCODE = 'check_violation';
        END IF;
    ELSIF NEW.state IS DISTINCT FROM OLD.state THEN
        PERFORM FROM order_saga.transitions t
        WHERE t.from_state = OLD.state AND t.to_state = NEW.state;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'illegal transition of saga %: % -> %', OLD.id, OLD.state, NEW.state
                USING ERRCODE = 'check_violation',
                      HINT = 'order_saga.transitions lists the moves a saga may make.';
        END IF;
    ELSE
        RETURN NEW;  -- no move
    END IF;
    NEW.updated_at := pg_catalog.now();
    INSERT INTO order_saga.history (saga_id, from_state, to_state)
    VALUES (NEW.id, CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END, NEW.state);
    RETURN NEW;
END $$;

-- BEFORE: the history row is written with the move and only if it is legal.
CREATE TRIGGER check_transition BEFORE INSERT OR UPDATE OF state ON order_saga.sagas
FOR EACH ROW EXECUTE FUNCTION order_saga.check_transition();

-- Sends a step's request: an event to the step's topic, keyed by the saga
-- (so that a saga's requests go one after another), with the callback that
-- handles its answer. The event's id is the request's webhook-id, which the
-- services deduplicate on: retries of one request carry the same id.
CREATE FUNCTION order_saga.send(s order_saga.sagas, topic text, callback text) RETURNS uuid
LANGUAGE sql AS $$
    SELECT outbox.enqueue(
        'saga.' || topic,
        pg_catalog.jsonb_build_object('saga_id', s.id, 'customer', s.customer, 'sku', s.sku,
                                      'quantity', s.quantity, 'amount_cents', s.amount_cents,
                                      'reservation_id', s.reservation_id, 'payment_id', s.payment_id,
                                      'shipment_id', s.shipment_id),
        key => 'saga-' || s.id,
        on_result => callback)
$$;

-- Moves the saga of a result from the state its step expects, keeping what
-- the step's answer names (the reservation, the payment, the shipment). A
-- result for a saga elsewhere (a stale or repeated call) is an error, so
-- that the callback fails visibly instead of acting twice.
CREATE FUNCTION order_saga.move(r outbox.delivery_result, from_state text, to_state text,
                                failure text DEFAULT NULL) RETURNS order_saga.sagas
LANGUAGE plpgsql AS $$
DECLARE
    s order_saga.sagas;
BEGIN
    UPDATE order_saga.sagas AS g
    SET state = move.to_state,
        failure = coalesce(move.failure, g.failure),
        reservation_id = coalesce(g.reservation_id, r.response ->> 'reservation_id'),
        payment_id = coalesce(g.payment_id, r.response ->> 'payment_id'),
        shipment_id = coalesce(g.shipment_id, r.response ->> 'shipment_id')
    WHERE g.id = (r.payload ->> 'saga_id')::bigint AND g.state = move.from_state
    RETURNING g.* INTO s;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'saga % is not %: result of event % (%) not applied',
                        r.payload ->> 'saga_id', from_state, r.event_id, r.topic
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN s;
END $$;

-- What a step's delivery says: 'done' (the service acted), 'refused' (it
-- answered that it will not: out of stock, declined, no slot; it did
-- nothing) or 'unknown' (no answer after every attempt: it may have acted,
-- so the step is compensated too). A 2xx the saga cannot read is an error.
CREATE FUNCTION order_saga.outcome(r outbox.delivery_result, id_field text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF r.state = 'dead' THEN
        RETURN 'unknown';
    ELSIF r.response ? 'refused' THEN
        RETURN 'refused';
    ELSIF r.response ->> id_field IS NOT NULL THEN
        RETURN 'done';
    END IF;
    RAISE EXCEPTION 'unexpected answer to event % (%): %', r.event_id, r.topic, r.response_text
        USING ERRCODE = 'data_exception';
END $$;

-- Starts a saga (as the application, in its own transaction): the order's
-- row and the first request commit together.
CREATE FUNCTION order_saga.start(order_id bigint, customer text, sku text, quantity int,
                                 amount_cents bigint) RETURNS uuid
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s order_saga.sagas;
BEGIN
    INSERT INTO order_saga.sagas (id, customer, sku, quantity, amount_cents)
    VALUES (order_id, start.customer, start.sku, start.quantity, start.amount_cents)
    RETURNING * INTO s;
    RETURN order_saga.send(s, 'inventory.reserve', 'order_saga.on_reserve');
END $$;

-- The callbacks, one per step.

CREATE FUNCTION order_saga.on_reserve(r outbox.delivery_result) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s order_saga.sagas;
BEGIN
    CASE order_saga.outcome(r, 'reservation_id')
    WHEN 'done' THEN
        s := order_saga.move(r, 'reserving', 'charging');
        PERFORM order_saga.send(s, 'payment.charge', 'order_saga.on_charge');
    WHEN 'refused' THEN
        PERFORM order_saga.move(r, 'reserving', 'compensated', 'inventory: ' || (r.response ->> 'refused'));
    ELSE
        s := order_saga.move(r, 'reserving', 'releasing', 'inventory: no answer');
        PERFORM order_saga.send(s, 'inventory.release', 'order_saga.on_release');
    END CASE;
END $$;

CREATE FUNCTION order_saga.on_charge(r outbox.delivery_result) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s order_saga.sagas;
BEGIN
    CASE order_saga.outcome(r, 'payment_id')
    WHEN 'done' THEN
        s := order_saga.move(r, 'charging', 'scheduling');
        PERFORM order_saga.send(s, 'fulfilment.schedule', 'order_saga.on_schedule');
    WHEN 'refused' THEN
        s := order_saga.move(r, 'charging', 'releasing', 'payment: ' || (r.response ->> 'refused'));
        PERFORM order_saga.send(s, 'inventory.release', 'order_saga.on_release');
    ELSE
        s := order_saga.move(r, 'charging', 'refunding', 'payment: no answer');
        PERFORM order_saga.send(s, 'payment.refund', 'order_saga.on_refund');
    END CASE;
END $$;

CREATE FUNCTION order_saga.on_schedule(r outbox.delivery_result) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s order_saga.sagas;
BEGIN
    CASE order_saga.outcome(r, 'shipment_id')
    WHEN 'done' THEN
        PERFORM order_saga.move(r, 'scheduling', 'completed');
    WHEN 'refused' THEN
        s := order_saga.move(r, 'scheduling', 'refunding', 'fulfilment: ' || (r.response ->> 'refused'));
        PERFORM order_saga.send(s, 'payment.refund', 'order_saga.on_refund');
    ELSE
        s := order_saga.move(r, 'scheduling', 'cancelling', 'fulfilment: no answer');
        PERFORM order_saga.send(s, 'fulfilment.cancel', 'order_saga.on_cancel');
    END CASE;
END $$;

-- A compensation must end in success: one that died (its service was down
-- for all its attempts) is sent again, as a new request. The services undo
-- a step at most once whatever the request (a second release finds the
-- reservation released), so a resent compensation that had in fact been
-- applied does nothing.
CREATE FUNCTION order_saga.resend(r outbox.delivery_result, expected_state text, topic text,
                                  callback text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s order_saga.sagas;
BEGIN
    s := order_saga.move(r, expected_state, expected_state);  -- no move: checks where the saga is
    UPDATE order_saga.sagas SET compensation_resends = compensation_resends + 1 WHERE id = s.id
    RETURNING * INTO s;
    PERFORM order_saga.send(s, topic, callback);
END $$;

CREATE FUNCTION order_saga.on_cancel(r outbox.delivery_result) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF r.state = 'dead' THEN
        PERFORM order_saga.resend(r, 'cancelling', 'fulfilment.cancel', 'order_saga.on_cancel');
    ELSE
        PERFORM order_saga.send(order_saga.move(r, 'cancelling', 'refunding'), 'payment.refund', 'order_saga.on_refund');
    END IF;
END $$;

CREATE FUNCTION order_saga.on_refund(r outbox.delivery_result) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF r.state = 'dead' THEN
        PERFORM order_saga.resend(r, 'refunding', 'payment.refund', 'order_saga.on_refund');
    ELSE
        PERFORM order_saga.send(order_saga.move(r, 'refunding', 'releasing'), 'inventory.release', 'order_saga.on_release');
    END IF;
END $$;

CREATE FUNCTION order_saga.on_release(r outbox.delivery_result) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF r.state = 'dead' THEN
        PERFORM order_saga.resend(r, 'releasing', 'inventory.release', 'order_saga.on_release');
    ELSE
        PERFORM order_saga.move(r, 'releasing', 'compensated');
    END IF;
END $$;

-- The application's role: it starts sagas, and the callbacks it names run
-- as it. Grant it to your application's login role.
CREATE ROLE saga_app;
GRANT outbox_writer TO saga_app;
GRANT USAGE ON SCHEMA order_saga TO saga_app;
GRANT SELECT, INSERT, UPDATE ON order_saga.sagas TO saga_app;
GRANT SELECT ON order_saga.transitions TO saga_app;
GRANT INSERT ON order_saga.history TO saga_app;
