// The worker's writes that stay statements prepared once in C (plan.hpp):
// what follows recorded results (dead deliveries announced as operational
// events, endpoints failing too long disabled), the hand-back of claims,
// and the sweep that moves up parked heads. Recording itself writes rows
// directly (queue_results.cpp). The worker and outbox.record() /
// outbox.unpark_heads() (relay.cpp) run these statements.
#include "pg/queue.hpp"

#include "pg/plan.hpp"
#include "pg/shmem.hpp"

#include <string>

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
}

namespace outbox::pg {

namespace {

// A dead operational event is not announced again: that could go round.
constexpr const char* kAnnounceDeadSql = R"sql(
SELECT outbox.emit('outbox.delivery.dead', pg_catalog.jsonb_build_object(
           'event_id', e.id, 'endpoint', ep.name, 'topic', e.topic, 'key', e.key,
           'attempts', d.attempts, 'last_status', d.last_status, 'last_error', d.last_error))
FROM unnest($1::uuid[], $2::integer[]) AS x(event_id, endpoint_id)
JOIN outbox.deliveries AS d ON d.event_id = x.event_id AND d.endpoint_id = x.endpoint_id
JOIN outbox.events AS e ON e.id = x.event_id
JOIN outbox.endpoints AS ep ON ep.id = x.endpoint_id
WHERE e.topic NOT LIKE 'outbox.%'
)sql";

// An endpoint whose every attempt has failed for its disable_after (it is
// failing since then: outbox.note_endpoint_health) is disabled; its
// deliveries wait until outbox.enable_endpoint().
constexpr const char* kDisableFailingSql = R"sql(
UPDATE outbox.endpoints AS ep
SET enabled = false, disabled_at = pg_catalog.now(), updated_at = pg_catalog.now(),
    disabled_reason = pg_catalog.format('every attempt has failed since %s (disable_after %s)',
                                        ep.failing_since, ep.disable_after)
WHERE ep.id = ANY ($1) AND ep.enabled AND ep.failing_since < pg_catalog.now() - ep.disable_after
)sql";

constexpr const char* kReleaseSql = R"sql(
UPDATE outbox.deliveries AS d
SET next_attempt_at = CASE WHEN d.key IS NOT NULL AND (EXISTS (
                               SELECT FROM outbox.deliveries AS p
                               WHERE p.state = 'pending' AND p.endpoint_id = d.endpoint_id
                                 AND p.key = d.key AND p.seq < d.seq) OR EXISTS (
                               SELECT FROM outbox.deliveries AS p
                               WHERE p.callback_state = 'pending' AND p.endpoint_id = d.endpoint_id
                                 AND p.key = d.key AND p.seq < d.seq))
                           THEN 'infinity'::timestamptz ELSE pg_catalog.now() END,
    attempts = d.attempts - CASE WHEN $4 THEN 1 ELSE 0 END
FROM unnest($1::uuid[], $2::integer[], $3::integer[]) AS r(event_id, endpoint_id, attempt)
WHERE d.event_id = r.event_id
  AND d.endpoint_id = r.endpoint_id
  AND d.attempts = r.attempt
  AND d.finished_at IS NULL  -- pending; see record_sql() for why not "state"
)sql";

// A skip scan: one index descent per (endpoint, key), however long the
// backlog; the parked heads it finds are updated by primary key, unless an
// earlier delivery of the key ended with a callback that has not
// committed yet.
constexpr const char* kUnparkSql = R"sql(
WITH RECURSIVE heads AS (
    (SELECT d.endpoint_id, d.key, d.seq, d.event_id, d.next_attempt_at FROM outbox.deliveries AS d
     WHERE d.state = 'pending' AND d.key IS NOT NULL
     ORDER BY d.endpoint_id, d.key, d.seq LIMIT 1)
    UNION ALL
    SELECT n.endpoint_id, n.key, n.seq, n.event_id, n.next_attempt_at
    FROM heads AS h,
         LATERAL (SELECT d.endpoint_id, d.key, d.seq, d.event_id, d.next_attempt_at
                  FROM outbox.deliveries AS d
                  WHERE d.state = 'pending' AND d.key IS NOT NULL
                    AND (d.endpoint_id, d.key) > (h.endpoint_id, h.key)
                  ORDER BY d.endpoint_id, d.key, d.seq LIMIT 1) AS n
), parked AS MATERIALIZED (
    SELECT h.event_id, h.endpoint_id FROM heads AS h
    WHERE h.next_attempt_at = 'infinity'
      AND NOT EXISTS (SELECT FROM outbox.deliveries AS c
                      WHERE c.callback_state = 'pending' AND c.endpoint_id = h.endpoint_id
                        AND c.key = h.key AND c.seq < h.seq)
)
UPDATE outbox.deliveries AS d
SET next_attempt_at = pg_catalog.now()
WHERE d.event_id = ANY (ARRAY(SELECT p.event_id FROM parked AS p))
  AND (d.event_id, d.endpoint_id) IN (SELECT p.event_id, p.endpoint_id FROM parked AS p)
  AND d.finished_at IS NULL AND NOT pg_catalog.isfinite(d.next_attempt_at)
)sql";

Plan announce_dead_plan{kAnnounceDeadSql, 2, {UUIDARRAYOID, INT4ARRAYOID}, nullptr};
Plan disable_failing_plan{kDisableFailingSql, 1, {INT4ARRAYOID}, nullptr};
Plan release_plan{kReleaseSql, 4, {UUIDARRAYOID, INT4ARRAYOID, INT4ARRAYOID, BOOLOID}, nullptr};
Plan unpark_plan{kUnparkSql, 0, {}, nullptr};

}  // namespace

void announce_dead(Datum event_ids, Datum endpoint_ids) {
    Datum values[2] = {event_ids, endpoint_ids};
    execute(announce_dead_plan, values, nullptr, SPI_OK_SELECT);
}

void disable_failing(Datum endpoint_ids) { execute(disable_failing_plan, &endpoint_ids, nullptr, SPI_OK_UPDATE); }

void release_claims(const ResultRow* rows, int count, bool never_sent) {
    if (count == 0) return;
    const pg_uuid_t** ids = static_cast<const pg_uuid_t**>(palloc(sizeof(pg_uuid_t*) * count));
    int32* endpoints = static_cast<int32*>(palloc(sizeof(int32) * count));
    int32* attempts = static_cast<int32*>(palloc(sizeof(int32) * count));
    for (int i = 0; i < count; i++) {
        ids[i] = rows[i].event_id;
        endpoints[i] = rows[i].endpoint_id;
        attempts[i] = rows[i].attempt;
    }
    Datum values[4] = {uuid_array(ids, count), int4_array(endpoints, count), int4_array(attempts, count),
                       BoolGetDatum(never_sent)};
    execute(release_plan, values, nullptr, SPI_OK_UPDATE);
    note_parked();  // a pipeline's rest may be parked again behind its head
}

int unpark_heads() { return execute(unpark_plan, nullptr, nullptr, SPI_OK_UPDATE); }

}  // namespace outbox::pg
