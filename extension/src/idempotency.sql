-- Idempotency keys, in the caller's transaction. A retried or double-sent
-- request (a double click, a network retry) carries the key of the first;
-- the transaction that holds the key does the work and stores its answer
-- with idempotency_complete(), all or nothing; the others wait for it and
-- get that answer. See README "From your application".
--
-- Whoever holds a key holds an advisory lock on it (for the transaction), so
-- a second caller waits (or, with wait => false, hears 'in_progress') until
-- the first ends; then it reads what the first committed. Requires READ
-- COMMITTED, the default: each statement must see what committed before it.

CREATE OR REPLACE FUNCTION outbox.idempotency_begin(key text, fingerprint text DEFAULT NULL,
                                                    ttl interval DEFAULT '24 hours', wait boolean DEFAULT true)
RETURNS TABLE (state text, response jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k outbox.idempotency_keys;
BEGIN
    IF idempotency_begin.key IS NULL OR idempotency_begin.ttl IS NULL OR idempotency_begin.wait IS NULL THEN
        RAISE EXCEPTION 'key, ttl and wait must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF idempotency_begin.key = '' OR octet_length(idempotency_begin.key) > 255 THEN
        RAISE EXCEPTION 'an idempotency key is 1 to 255 bytes'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use a UUID made by the client for each logical request.';
    END IF;
    IF idempotency_begin.ttl <= interval '0' THEN
        RAISE EXCEPTION 'ttl must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'idempotency_begin() needs the read committed isolation level'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = format('This transaction is %s: it would not see what another holder of the key committed.',
                                  current_setting('transaction_isolation')),
                  HINT = 'Run the request''s transaction at the default isolation level.';
    END IF;
    IF idempotency_begin.wait THEN
        PERFORM pg_advisory_xact_lock(1869902968, hashtext(idempotency_begin.key));
    ELSIF NOT pg_try_advisory_xact_lock(1869902968, hashtext(idempotency_begin.key)) THEN
        RETURN QUERY SELECT 'in_progress'::text, NULL::jsonb;
        RETURN;
    END IF;
    SELECT * INTO k FROM outbox.idempotency_keys AS i WHERE i.key = idempotency_begin.key;
    IF FOUND AND k.expires_at > now() THEN
        IF k.holder_txid = pg_current_xact_id() THEN
            RETURN QUERY SELECT 'new'::text, NULL::jsonb;  -- asked again in the transaction that holds it
        ELSIF k.fingerprint IS DISTINCT FROM idempotency_begin.fingerprint THEN
            RETURN QUERY SELECT 'mismatch'::text, NULL::jsonb;
        ELSE
            RETURN QUERY SELECT 'completed'::text, k.response;
        END IF;
        RETURN;
    END IF;
    -- Unknown, or forgotten after its ttl: this transaction holds it now.
    DELETE FROM outbox.idempotency_keys AS i WHERE i.key = idempotency_begin.key;
    INSERT INTO outbox.idempotency_keys (key, fingerprint, expires_at)
    VALUES (idempotency_begin.key, idempotency_begin.fingerprint, now() + idempotency_begin.ttl);
    RETURN QUERY SELECT 'new'::text, NULL::jsonb;
END
$$;

CREATE OR REPLACE FUNCTION outbox.idempotency_complete(key text, response jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF idempotency_complete.key IS NULL THEN
        RAISE EXCEPTION 'key must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    UPDATE outbox.idempotency_keys AS i
    SET response = idempotency_complete.response, completed_at = now()
    WHERE i.key = idempotency_complete.key AND i.holder_txid = pg_current_xact_id();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'idempotency key "%" is not held by this transaction', left(idempotency_complete.key, 64)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Call outbox.idempotency_begin() first, in the same transaction, and complete only when it said ''new''.';
    END IF;
END
$$;
