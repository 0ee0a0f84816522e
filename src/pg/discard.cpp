// outbox.discard(event_id, endpoint): ends an event's pending deliveries --
// to one endpoint, or to every one -- as dead, through the worker's own
// recording (queue_results.cpp), so that a discarded delivery ends as any
// other: its callback is called in this transaction, its key's next
// delivery moves up, it is announced (outbox.delivery.dead). A delivery in
// flight meanwhile keeps its end: the worker's result for it no longer
// matches a pending row and is dropped.
//
// Plain PostgreSQL code, no C++ objects: errors simply propagate.
#include "pg/queue.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(outbox_discard);
}

using namespace outbox::pg;

extern "C" Datum outbox_discard(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("event_id must not be null")));
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    Oid types[2] = {UUIDOID, TEXTOID};
    Datum args[2] = {PG_GETARG_DATUM(0), PG_ARGISNULL(1) ? (Datum)0 : PG_GETARG_DATUM(1)};
    char nulls[2] = {' ', PG_ARGISNULL(1) ? 'n' : ' '};
    int rc = SPI_execute_with_args(R"sql(
SELECT d.event_id, d.endpoint_id, d.attempts
FROM outbox.deliveries AS d
WHERE d.event_id = $1 AND d.finished_at IS NULL
  AND ($2::text IS NULL OR d.endpoint_id = outbox.endpoint_id($2))
ORDER BY d.endpoint_id
FOR UPDATE
)sql", 2, types, args, nulls, false, 0);
    if (rc != SPI_OK_SELECT) elog(ERROR, "outbox.discard: %s", SPI_result_code_string(rc));
    int n = static_cast<int>(SPI_processed);
    ResultRow* rows = static_cast<ResultRow*>(palloc0(sizeof(ResultRow) * (n > 0 ? n : 1)));
    for (int i = 0; i < n; i++) {
        HeapTuple row = SPI_tuptable->vals[i];
        bool null = false;
        pg_uuid_t* id = static_cast<pg_uuid_t*>(palloc(sizeof(pg_uuid_t)));
        *id = *DatumGetUUIDP(SPI_getbinval(row, SPI_tuptable->tupdesc, 1, &null));
        rows[i].event_id = id;
        rows[i].endpoint_id = DatumGetInt32(SPI_getbinval(row, SPI_tuptable->tupdesc, 2, &null));
        rows[i].attempt = DatumGetInt32(SPI_getbinval(row, SPI_tuptable->tupdesc, 3, &null));
        rows[i].state = "dead";
        rows[i].error = "discarded (outbox.discard)";
        rows[i].started_known = false;
        rows[i].duration_known = false;
        rows[i].discarded = true;
    }
    int ended = record_results(rows, n);
    SPI_finish();
    PG_RETURN_INT32(ended);
}
