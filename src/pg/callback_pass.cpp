// How callbacks went, written; and the worker's pass over the callbacks
// due again (callbacks.hpp). Statements prepared once (plan.hpp): this is
// the path of failed callbacks, not of every delivery.
#include "pg/callbacks.hpp"

#include "pg/gucs.hpp"
#include "pg/plan.hpp"
#include "pg/queue.hpp"
#include "pg/spi_values.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/builtins.h"
}

namespace outbox::pg {

namespace {

// $1..$3 the calls (error NULL: done), $4 1 unless counted already, $5
// outbox.callback_max_attempts, $6/$7 outbox.retry_base/retry_max in ms.
// A dead callback is announced, unless its event is an operational one
// (that could go round).
Plan note_plan{R"sql(
WITH noted AS (
    UPDATE outbox.deliveries AS d
    SET callback_attempts = d.callback_attempts + $4,
        callback_state = CASE WHEN x.error IS NULL THEN 'done'
                              WHEN d.callback_attempts + $4 >= $5 THEN 'dead' ELSE 'pending' END,
        callback_next_at = CASE WHEN x.error IS NULL OR d.callback_attempts + $4 >= $5 THEN NULL
                                ELSE pg_catalog.now() + least($7::float8, $6::float8 * pg_catalog.power(
                                         2::float8, greatest(d.callback_attempts + $4 - 1, 0)))
                                     * interval '1 millisecond' END,
        callback_error = x.error
    FROM unnest($1::uuid[], $2::integer[], $3::text[]) AS x(event_id, endpoint_id, error)
    WHERE d.event_id = x.event_id AND d.endpoint_id = x.endpoint_id
    RETURNING d.event_id, d.endpoint_id, d.callback_state, d.callback_attempts, d.callback_error
)
SELECT outbox.emit('outbox.callback.dead', pg_catalog.jsonb_build_object(
           'event_id', e.id, 'endpoint', ep.name, 'topic', e.topic, 'key', e.key,
           'callback', CASE WHEN e.on_result IS NOT NULL THEN e.on_result ELSE ep.on_result END,
           'attempts', n.callback_attempts, 'error', n.callback_error))
FROM noted AS n
JOIN outbox.events AS e ON e.id = n.event_id
JOIN outbox.endpoints AS ep ON ep.id = n.endpoint_id
WHERE n.callback_state = 'dead' AND e.topic NOT LIKE 'outbox.%'
)sql", 7, {UUIDARRAYOID, INT4ARRAYOID, TEXTARRAYOID, INT4OID, INT4OID, INT4OID, INT4OID}, nullptr};

// Due callbacks, oldest first; one worker each.
Plan due_plan{R"sql(
SELECT d.event_id, d.endpoint_id
FROM outbox.deliveries AS d
WHERE d.callback_state = 'pending' AND d.callback_next_at <= pg_catalog.now()
ORDER BY d.callback_next_at
LIMIT $1
FOR UPDATE SKIP LOCKED
)sql", 1, {INT4OID}, nullptr};

}  // namespace

void note_callbacks(const CallbackCall* calls, int n, bool counted, bool only_failed) {
    const pg_uuid_t** ids = static_cast<const pg_uuid_t**>(palloc(sizeof(pg_uuid_t*) * (n > 0 ? n : 1)));
    int32* endpoints = static_cast<int32*>(palloc(sizeof(int32) * (n > 0 ? n : 1)));
    const char** errors = static_cast<const char**>(palloc(sizeof(char*) * (n > 0 ? n : 1)));
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (only_failed && calls[i].error == nullptr) continue;
        ids[k] = calls[i].event_id;
        endpoints[k] = calls[i].endpoint_id;
        errors[k++] = calls[i].error;
    }
    if (k == 0) return;
    Datum values[7] = {uuid_array(ids, k),          int4_array(endpoints, k),
                       text_array(errors, k),       Int32GetDatum(counted ? 0 : 1),
                       Int32GetDatum(guc_callback_max_attempts), Int32GetDatum(guc_retry_base_ms),
                       Int32GetDatum(guc_retry_max_ms)};
    execute(note_plan, values, nullptr, SPI_OK_SELECT);
}

int call_due_callbacks(int limit) {
    Datum arg = Int32GetDatum(limit);
    int n = execute(due_plan, &arg, nullptr, SPI_OK_SELECT);
    if (n == 0) return 0;
    CallbackCall* calls = static_cast<CallbackCall*>(palloc0(sizeof(CallbackCall) * n));
    for (int i = 0; i < n; i++) {
        bool null = false;
        HeapTuple row = SPI_tuptable->vals[i];
        pg_uuid_t* id = static_cast<pg_uuid_t*>(palloc(sizeof(pg_uuid_t)));
        *id = *DatumGetUUIDP(SPI_getbinval(row, SPI_tuptable->tupdesc, 1, &null));
        calls[i].event_id = id;
        calls[i].endpoint_id = DatumGetInt32(SPI_getbinval(row, SPI_tuptable->tupdesc, 2, &null));
    }
    call_callbacks(calls, n);
    note_callbacks(calls, n, false, false);
    // Keys whose callback is done or dead may go on.
    unpark_heads();
    return n;
}

}  // namespace outbox::pg
