// The protocol an external relay shares with the workers: outbox.claim(),
// record(), dispatch_and_lease() and unpark_heads() (delivery.sql,
// dispatch.sql) run the very statements the worker runs (queue_*.cpp), so
// the rules (lease, key order, parking, restore placement) are written once
// and what the isolation specs show of these functions holds for the worker.
//
// Plain PostgreSQL code, no C++ objects: errors simply propagate.
#include "pg/queue.hpp"

#include <algorithm>

extern "C" {
#include "fmgr.h"
#include "funcapi.h"
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(outbox_claim);
PG_FUNCTION_INFO_V1(outbox_record);
PG_FUNCTION_INFO_V1(outbox_dispatch_and_lease);
PG_FUNCTION_INFO_V1(outbox_unpark_heads);
}

namespace outbox::pg {

namespace {

void connect_spi() {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
}

// The arguments that must be given.
void require(FunctionCallInfo fcinfo, int n) {
    for (int i = 0; i < n; i++)
        if (PG_ARGISNULL(i))
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                            errmsg("argument %d of %s must not be null", i + 1, get_func_name(fcinfo->flinfo->fn_oid))));
}

// A time given as microseconds since the Unix epoch.
TimestampTz unix_us_to_timestamp(int64 us) {
    return us - static_cast<int64>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
}

// One argument of outbox.record(): its elements, or none when it is NULL.
struct Elements {
    Datum* values = nullptr;
    bool* nulls = nullptr;
    int n = 0;

    bool null(int i) const { return i >= n || nulls[i]; }
};

Elements elements(FunctionCallInfo fcinfo, int arg, Oid type) {
    Elements e;
    if (arg >= PG_NARGS() || PG_ARGISNULL(arg)) return e;
    int16 len;
    bool byval;
    char align;
    get_typlenbyvalalign(type, &len, &byval, &align);
    deconstruct_array(PG_GETARG_ARRAYTYPE_P(arg), type, len, byval, align, &e.values, &e.nulls, &e.n);
    return e;
}

[[noreturn]] void null_column(const char* column) {
    ereport(ERROR, (errcode(ERRCODE_NOT_NULL_VIOLATION),
                    errmsg("null value in column \"%s\" of relation \"deliveries\" violates not-null constraint", column)));
}

// The results outbox.record() is given, as parallel arrays read row by row
// (as unnest() reads them: a shorter array gives NULLs). A row without its
// event, endpoint or attempt matches no delivery.
int results_of(FunctionCallInfo fcinfo, ResultRow** out) {
    static const Oid types[11] = {UUIDOID, INT4OID, INT4OID, TEXTOID, INT8OID, INT4OID,
                                  TEXTOID, INT8OID, TEXTOID, INT8OID, JSONBOID};
    Elements a[11];
    int n = 0;
    for (int i = 0; i < 11; i++) {
        a[i] = elements(fcinfo, i, types[i]);
        n = std::max(n, a[i].n);
    }
    ResultRow* rows = static_cast<ResultRow*>(palloc0(sizeof(ResultRow) * (n > 0 ? n : 1)));
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (a[0].null(i) || a[1].null(i) || a[2].null(i)) continue;
        if (a[3].null(i)) null_column("state");
        ResultRow& r = rows[k++];
        r.event_id = DatumGetUUIDP(a[0].values[i]);
        r.endpoint_id = DatumGetInt32(a[1].values[i]);
        r.attempt = DatumGetInt32(a[2].values[i]);
        r.state = TextDatumGetCString(a[3].values[i]);
        if (a[4].null(i) && strcmp(r.state, "pending") == 0) null_column("next_attempt_at");
        r.retry_in_ms = a[4].null(i) ? 0 : DatumGetInt64(a[4].values[i]);
        r.status = a[5].null(i) ? 0 : DatumGetInt32(a[5].values[i]);
        r.error = a[6].null(i) ? nullptr : TextDatumGetCString(a[6].values[i]);
        r.duration_known = !a[7].null(i);
        r.duration_us = r.duration_known ? DatumGetInt64(a[7].values[i]) : 0;
        r.response = a[8].null(i) ? nullptr : TextDatumGetCString(a[8].values[i]);
        r.started_known = !a[9].null(i);
        r.started_at = r.started_known ? unix_us_to_timestamp(DatumGetInt64(a[9].values[i])) : 0;
        r.headers = a[10].null(i) ? 0 : a[10].values[i];
    }
    *out = rows;
    return k;
}

}  // namespace

}  // namespace outbox::pg

using namespace outbox::pg;

// outbox.claim(endpoint_id, max_rows, lease_ms, followers): the claimed rows,
// as a set.
extern "C" Datum outbox_claim(PG_FUNCTION_ARGS) {
    require(fcinfo, 3);
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    MemoryContext out = CurrentMemoryContext;
    ClaimedRow* rows = nullptr;
    connect_spi();
    int n = claim_deliveries(PG_GETARG_INT32(0), PG_GETARG_INT32(1), PG_GETARG_INT64(2),
                             PG_ARGISNULL(3) ? 0 : PG_GETARG_INT32(3), out, &rows);
    SPI_finish();
    for (int i = 0; i < n; i++) {
        const ClaimedRow& row = rows[i];
        Datum values[8] = {UUIDPGetDatum(const_cast<pg_uuid_t*>(&row.event_uuid)), Int32GetDatum(row.attempt),
                           row.topic ? CStringGetTextDatum(row.topic) : (Datum)0,
                           row.payload ? CStringGetTextDatum(row.payload) : (Datum)0,
                           row.header_lines ? CStringGetTextDatum(row.header_lines) : (Datum)0,
                           TimestampTzGetDatum(row.created_at),
                           row.key ? CStringGetTextDatum(row.key) : (Datum)0, Int64GetDatum(row.seq)};
        bool nulls[8] = {false, false, row.topic == nullptr, row.payload == nullptr, row.header_lines == nullptr,
                         false, row.key == nullptr, false};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum)0;
}

// outbox.record(event_ids, endpoint_ids, attempts, states, retry_in_ms,
// statuses, errors, durations_us, responses, started_at_us,
// response_headers): how many results were written.
extern "C" Datum outbox_record(PG_FUNCTION_ARGS) {
    ResultRow* rows = nullptr;
    int n = results_of(fcinfo, &rows);
    connect_spi();
    int recorded = record_results(rows, n);
    SPI_finish();
    PG_RETURN_INT32(recorded);
}

// outbox.dispatch_and_lease(max_events, include_default, lease_ms,
// lease_endpoints, lease_limits, OUT dispatched, OUT leased_events,
// OUT leased_endpoints).
extern "C" Datum outbox_dispatch_and_lease(PG_FUNCTION_ARGS) {
    require(fcinfo, 3);
    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "outbox.dispatch_and_lease must return a row");
    desc = BlessTupleDesc(desc);
    MemoryContext out = CurrentMemoryContext;
    Datum no_leases = PointerGetDatum(construct_empty_array(INT4OID));
    DispatchRequest request{PG_GETARG_INT32(0), PG_GETARG_BOOL(1), PG_GETARG_INT64(2),
                            PG_ARGISNULL(3) ? no_leases : PG_GETARG_DATUM(3),
                            PG_ARGISNULL(4) ? no_leases : PG_GETARG_DATUM(4)};
    DispatchResult result;
    connect_spi();
    dispatch_events(request, out, &result);
    SPI_finish();
    Datum values[3] = {Int32GetDatum(result.dispatched), (Datum)0, (Datum)0};
    bool nulls[3] = {false, result.n_leased == 0, result.n_leased == 0};
    if (result.n_leased > 0) {
        Datum* ids = static_cast<Datum*>(palloc(sizeof(Datum) * result.n_leased));
        Datum* endpoints = static_cast<Datum*>(palloc(sizeof(Datum) * result.n_leased));
        for (int i = 0; i < result.n_leased; i++) {
            ids[i] = UUIDPGetDatum(&result.leased[i].event_uuid);
            endpoints[i] = Int32GetDatum(result.leased[i].endpoint_id);
        }
        values[1] = PointerGetDatum(construct_array(ids, result.n_leased, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
        values[2] = PointerGetDatum(construct_array(endpoints, result.n_leased, INT4OID, 4, true, TYPALIGN_INT));
    }
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

// outbox.unpark_heads(): how many parked heads it moved up.
extern "C" Datum outbox_unpark_heads(PG_FUNCTION_ARGS) {
    connect_spi();
    int moved = unpark_heads();
    SPI_finish();
    PG_RETURN_INT32(moved);
}
