-- Per-endpoint control: delivery policy arguments of create_endpoint and
-- alter_endpoint, their validation, payload filters, automatic disabling
-- and redrive by time and status. The worker is paused in this instance.
TRUNCATE outbox.events, outbox.deliveries, outbox.attempts;

-- The policy is stored and shown; NULL means the outbox.* setting.
SELECT outbox.create_endpoint('billing', 'https://billing.example.com/', topics => '{order.*}',
                              rate_limit => 20, max_in_flight => 4, max_attempts => 3, retry_base => '2s', retry_max => '1 min',
                              filter => '$.total > 100') ~ '^whsec_' AS created;
SELECT outbox.create_endpoint('nl', 'https://nl.example.com/', topics => '{order.*}',
                              filter => '$.country == "NL"', disable_after => NULL) ~ '^whsec_' AS created;
SELECT name, rate_limit, max_in_flight, max_attempts, retry_base, retry_max, filter, disable_after
FROM outbox.endpoint_status WHERE name IN ('billing', 'nl') ORDER BY name;

-- Bad values are refused before anything is written.
SELECT outbox.create_endpoint('bad', 'https://bad.example.com/', rate_limit => 0);
SELECT outbox.create_endpoint('bad', 'https://bad.example.com/', rate_limit => 'Infinity');
SELECT outbox.create_endpoint('bad', 'https://bad.example.com/', max_in_flight => 0);
SELECT outbox.create_endpoint('bad', 'https://bad.example.com/', max_attempts => 0);
SELECT outbox.create_endpoint('bad', 'https://bad.example.com/', retry_base => '1 hour', retry_max => '1 min');
SELECT outbox.create_endpoint('bad', 'https://bad.example.com/', retry_base => '-1s');
SELECT outbox.create_endpoint('bad', 'https://bad.example.com/', disable_after => '-1 day');
SELECT outbox.create_endpoint('bad', 'https://bad.example.com/', filter => '$.total >');
SELECT outbox.create_endpoint('bad', 'https://bad.example.com/', filter => '$.total');
SELECT outbox.alter_endpoint('billing', retry_base => '2 min');  -- longer than its retry_max
SELECT outbox.alter_endpoint('billing', reset => '{url}');
SELECT count(*) AS endpoints FROM outbox.endpoints WHERE name = 'bad';

-- alter_endpoint: NULL leaves a setting as it is; reset puts it back.
SELECT outbox.alter_endpoint('billing', max_attempts => 5, rate_limit => 2.5);
SELECT outbox.alter_endpoint('nl', disable_after => '1 hour');
SELECT name, rate_limit, max_in_flight, max_attempts, retry_base, filter, disable_after FROM outbox.endpoint_status
WHERE name IN ('billing', 'nl') ORDER BY name;
SELECT outbox.alter_endpoint('billing', reset => '{rate_limit, max_in_flight, max_attempts, retry_base, retry_max, disable_after}');
SELECT outbox.alter_endpoint('nl', disable_after => '0');  -- never
SELECT name, rate_limit, max_in_flight, max_attempts, retry_base, retry_max, filter, disable_after
FROM outbox.endpoint_status WHERE name IN ('billing', 'nl') ORDER BY name;

-- Filters decide, after topic patterns, which endpoints get a delivery. A
-- filter that cannot be evaluated on a payload (a string compared with a
-- number) is no match, counted per endpoint (and logged the first time).
SELECT outbox.enqueue('order.created', '{"total": 250, "country": "NL"}') AS big_nl \gset
SELECT outbox.enqueue('order.created', '{"total": 20, "country": "NL"}') AS small_nl \gset
SELECT outbox.enqueue('order.created', '{"total": 500, "country": "DE"}') AS big_de \gset
SELECT outbox.enqueue('order.created', '{"total": "lots", "country": "FR"}') AS odd \gset
SELECT outbox.enqueue('user.created', '{"total": 1000, "country": "NL"}') AS other_topic \gset
SELECT outbox.dispatch(100, include_default => false) AS dispatched;
SELECT CASE d.event_id WHEN :'big_nl' THEN 'big_nl' WHEN :'small_nl' THEN 'small_nl' WHEN :'big_de' THEN 'big_de'
                       WHEN :'odd' THEN 'odd' ELSE 'other' END AS event,
       string_agg(ep.name, ', ' ORDER BY ep.name) AS endpoints
FROM outbox.deliveries AS d JOIN outbox.endpoints AS ep ON ep.id = d.endpoint_id
GROUP BY 1 ORDER BY 1;
SELECT name, filter_errors FROM outbox.endpoint_status WHERE name IN ('billing', 'nl') ORDER BY name;
-- A new filter starts a new count.
SELECT outbox.alter_endpoint('billing', filter => '$.total >= 20');
SELECT name, filter, filter_errors FROM outbox.endpoint_status WHERE name = 'billing';

-- disable_after: an endpoint failing for longer is disabled by the next
-- failed attempt recorded, with the reason, announced and logged.
SELECT outbox.alter_endpoint('nl', disable_after => '1 hour');
SELECT outbox.note_endpoint_health((SELECT id FROM outbox.endpoints WHERE name = 'nl'), true,
                                   now() - interval '2 hours', 5, 'HTTP 500') AS failing;
SELECT count(*) AS claimed FROM outbox.claim((SELECT id FROM outbox.endpoints WHERE name = 'nl'), 10, 60000);
SELECT outbox.record(ARRAY[:'big_nl']::uuid[], ARRAY[(SELECT id FROM outbox.endpoints WHERE name = 'nl')],
                     ARRAY[1], ARRAY['pending'], ARRAY[1000]::bigint[], ARRAY[500], ARRAY['HTTP 500'],
                     ARRAY[1000]::bigint[], ARRAY[NULL]::text[]) AS recorded;
SELECT name, enabled, disabled_reason ~ '^every attempt has failed since .* \(disable_after .*1 hour\)$' AS reason_says_why
FROM outbox.endpoint_status WHERE name = 'nl';
SELECT e.payload->>'endpoint' AS endpoint, e.payload->>'reason' LIKE 'every attempt has failed%' AS announced
FROM outbox.events AS e WHERE e.topic = 'outbox.endpoint.disabled';
SELECT state FROM outbox.deliveries WHERE event_id = :'big_nl' AND endpoint_id = (SELECT id FROM outbox.endpoints WHERE name = 'nl');

-- redrive by time range and last status: dead deliveries of billing that
-- died with 5xx, with 429, and without an HTTP response.
SELECT outbox.replay(:'small_nl', endpoint => 'billing') + outbox.replay(:'odd', endpoint => 'billing') AS replayed;
UPDATE outbox.deliveries AS d
SET state = 'dead', finished_at = v.died, last_status = v.status
FROM (VALUES (:'big_nl'::uuid, timestamptz '2026-11-30 02:10+00', 503),
             (:'small_nl'::uuid, timestamptz '2026-11-30 02:50+00', 429),
             (:'odd'::uuid, timestamptz '2026-11-30 02:40+00', NULL),
             (:'big_de'::uuid, timestamptz '2026-11-30 03:10+00', 500)) AS v(event_id, died, status)
WHERE d.event_id = v.event_id AND d.endpoint_id = (SELECT id FROM outbox.endpoints WHERE name = 'billing');
SELECT outbox.redrive('billing', since => '2026-11-30 02:00+00', until => '2026-11-30 03:00+00', statuses => '{5xx}') AS redriven;
SELECT outbox.redrive('billing', statuses => '{429, none}') AS redriven;
SELECT outbox.redrive('billing', statuses => '{5XX}');
SELECT outbox.redrive('billing', since => '2026-11-30 03:00+00', until => '2026-11-30 02:00+00');
SELECT outbox.redrive('billing') AS the_rest;

SELECT outbox.drop_endpoint('billing');
SELECT outbox.drop_endpoint('nl');
TRUNCATE outbox.events, outbox.deliveries, outbox.attempts;
