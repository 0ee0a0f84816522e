-- Nothing is reachable by PUBLIC; writers enqueue; admins manage endpoints,
-- read delivery history and statistics and replay; monitoring (pg_monitor)
-- reads the statistics. Secrets are readable by no role.
REVOKE ALL ON SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA outbox FROM PUBLIC;
GRANT USAGE ON SCHEMA outbox TO outbox_writer, outbox_admin;
GRANT EXECUTE ON FUNCTION
    outbox.enqueue(text, jsonb, text, jsonb, uuid, text),
    outbox.idempotency_begin(text, text, interval, boolean),
    outbox.idempotency_complete(text, jsonb)
TO outbox_writer, outbox_admin;
GRANT SELECT ON outbox.events, outbox.deliveries, outbox.endpoints, outbox.endpoint_status, outbox.attempts,
                outbox.stats, outbox.idempotency_keys
TO outbox_admin;
GRANT USAGE ON SCHEMA outbox TO pg_monitor;
GRANT SELECT ON outbox.stats TO pg_monitor;
GRANT EXECUTE ON FUNCTION outbox.endpoint_counters(integer), outbox.endpoint_gauges(integer),
                          outbox.endpoint_callbacks(integer) TO outbox_admin, pg_monitor;
GRANT EXECUTE ON FUNCTION
    outbox.create_endpoint(text, text, text[], text, jsonb, interval, double precision, integer, integer, interval,
                           interval, jsonpath, interval, text),
    outbox.create_endpoint_config(text, text, text[], text, jsonb, interval, double precision, integer, integer,
                                  interval, interval, jsonpath, interval),
    outbox.alter_endpoint(text, text, text[], jsonb, interval, double precision, integer, integer, interval, interval,
                          jsonpath, interval, text[], text),
    outbox.alter_endpoint_config(text, text, text[], jsonb, interval, double precision, integer, integer, interval,
                                 interval, jsonpath, interval, text[]),
    outbox.set_endpoint_callback(text, text),
    outbox.discard(uuid, text),
    outbox.rotate_secret(text, text, interval),
    outbox.disable_endpoint(text, text),
    outbox.enable_endpoint(text),
    outbox.drop_endpoint(text),
    outbox.replay(uuid, text),
    outbox.redrive(text, timestamptz, timestamptz, text[]),
    outbox.stats_reset()
TO outbox_admin;
