// Dispatch: events committed since the last pass become deliveries, one per
// enabled endpoint whose topics (and filter) match, and those the caller
// would claim next are made leased. The worker and outbox.dispatch_and_lease()
// (relay.cpp) call dispatch_events(); queue.hpp says what it does, and
// dispatch_pass.hpp how a pass goes. The rows are read by index and
// written directly (direct_rows.hpp): a planned statement for this cost
// more than a millisecond of CPU, most of it starting an executor for a
// plan of some forty nodes, for one or two events at a moderate rate.
#include "pg/compat.hpp"
#include "pg/queue.hpp"

#include "pg/dispatch_pass.hpp"
#include "pg/plan.hpp"
#include "pg/queue_tables.hpp"
#include "pg/shmem.hpp"

#include <initializer_list>

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace outbox::pg {

namespace {

// Restored events that arrived before the dumped dispatch state (see
// restore.sql). An index probe that finds nothing, mostly.
Plan place_restored_plan{"SELECT outbox.place_restored_events()", 0, {}, nullptr};

// A filter that fails on an event (a string compared with a number, say)
// is no match; counted per endpoint, logged the first time.
Plan filter_failed_plan{R"sql(
UPDATE outbox.endpoints AS ep
SET filter_errors = ep.filter_errors + f.n
FROM unnest($1::integer[], $2::bigint[]) AS f(endpoint_id, n)
WHERE ep.id = f.endpoint_id
RETURNING ep.name, ep.filter::text, ep.filter_errors = f.n
)sql", 2, {INT4ARRAYOID, INT8ARRAYOID}, nullptr};

Relation open_index(const char* name) {
    Oid relid = get_relname_relid(name, get_namespace_oid("outbox", false));
    if (!OidIsValid(relid))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("index outbox.%s does not exist", name),
                        errhint("Reinstall the extension; the workers need the indexes it creates.")));
    return index_open(relid, AccessShareLock);
}

int by_endpoint_key_seq(const void* a, const void* b) {
    const Delivery& x = *static_cast<const Delivery*>(a);
    const Delivery& y = *static_cast<const Delivery*>(b);
    if (x.endpoint != y.endpoint) return x.endpoint < y.endpoint ? -1 : 1;
    if ((x.key == 0) != (y.key == 0)) return x.key == 0 ? -1 : 1;
    if (x.key != 0) {
        int keys = strcmp(TextDatumGetCString(x.key), TextDatumGetCString(y.key));
        if (keys != 0) return keys;
    }
    return x.seq < y.seq ? -1 : x.seq > y.seq ? 1 : 0;
}

int by_seq(const void* a, const void* b) {
    int64 x = static_cast<const ClaimedRow*>(a)->seq, y = static_cast<const ClaimedRow*>(b)->seq;
    return x < y ? -1 : x > y ? 1 : 0;
}

int by_endpoint_seq(const void* a, const void* b) {
    const Delivery& x = *static_cast<const Delivery*>(a);
    const Delivery& y = *static_cast<const Delivery*>(b);
    if (x.endpoint != y.endpoint) return x.endpoint < y.endpoint ? -1 : 1;
    return x.seq < y.seq ? -1 : x.seq > y.seq ? 1 : 0;
}

// Whether a delivery of the key earlier than `d` has `column` equal to
// "pending", as the pass's snapshot sees it (one descent of `index`, on
// (endpoint_id, key, seq)).
bool earlier_with(Relation deliveries, Relation index, int column_number, const Delivery& d, Snapshot snapshot,
                  TupleTableSlot* slot) {
    ScanKeyData keys[3];
    index_key(&keys[0], index, 1, BTEqualStrategyNumber, Int32GetDatum(d.endpoint));
    index_key(&keys[1], index, 2, BTEqualStrategyNumber, d.key);
    index_key(&keys[2], index, 3, BTLessStrategyNumber, Int64GetDatum(d.seq));
    IndexScanDesc scan = compat::index_scan(deliveries, index, snapshot, 3);
    index_rescan(scan, keys, 3, nullptr, 0);
    bool found = false;
    while (!found && index_getnext_slot(scan, ForwardScanDirection, slot)) {
        bool null = false;
        Datum value = column(slot, column_number, &null);
        found = !null && strcmp(TextDatumGetCString(value), "pending") == 0;
    }
    index_endscan(scan);
    return found;
}

// Whether an earlier delivery of the key is pending, or ended with a
// callback that has not committed yet (deliveries_callbacks: empty unless
// callbacks failed).
bool earlier_pending(DirectTable& t, Relation key_order, Relation callbacks, const Delivery& d, Snapshot snapshot) {
    return earlier_with(t.rel, key_order, deliveries::kState, d, snapshot, t.current) ||
           earlier_with(t.rel, callbacks, deliveries::kCallbackState, d, snapshot, t.current);
}

// A keyed delivery behind an earlier pending one of its key (in this batch
// or already queued) is parked: next_attempt_at 'infinity' keeps it out of
// the claim's scan until recording its predecessor's outcome moves it up.
void park(DirectTable& t, Delivery* d, int n, Snapshot snapshot) {
    qsort(d, n, sizeof(Delivery), by_endpoint_key_seq);
    Relation key_order = index_named(t, "deliveries_key_order");
    Relation callbacks = index_named(t, "deliveries_callbacks");
    bool parked = false;
    for (int i = 0; i < n; i++) {
        if (d[i].key == 0) continue;
        bool behind_one_of_the_batch = i > 0 && d[i - 1].key != 0 && d[i - 1].endpoint == d[i].endpoint &&
                                       strcmp(TextDatumGetCString(d[i - 1].key), TextDatumGetCString(d[i].key)) == 0;
        d[i].parked = behind_one_of_the_batch || earlier_pending(t, key_order, callbacks, d[i], snapshot);
        if (d[i].parked) parked = true;
    }
    if (parked) note_parked();
}

// The first of each endpoint's due deliveries (in seq order), as many as
// its lease limit allows, are leased: made leased, a delivery costs one
// row version less than made and then claimed.
void lease(Delivery* d, int n, const DispatchRequest& request) {
    Datum* endpoints = nullptr;
    Datum* limits = nullptr;
    bool* nulls = nullptr;
    int ne = 0, nl = 0;
    deconstruct_array(DatumGetArrayTypeP(request.lease_endpoints), INT4OID, 4, true, TYPALIGN_INT, &endpoints, &nulls, &ne);
    deconstruct_array(DatumGetArrayTypeP(request.lease_limits), INT4OID, 4, true, TYPALIGN_INT, &limits, &nulls, &nl);
    qsort(d, n, sizeof(Delivery), by_endpoint_seq);
    int left = 0;
    for (int i = 0; i < n; i++) {
        if (i == 0 || d[i].endpoint != d[i - 1].endpoint) {
            left = 0;
            for (int j = 0; j < ne && j < nl; j++)
                if (DatumGetInt32(endpoints[j]) == d[i].endpoint) {
                    left = DatumGetInt32(limits[j]);
                    break;
                }
        }
        if (d[i].parked || left <= 0) continue;
        d[i].leased = true;
        left--;
    }
}

void insert_deliveries(DirectTable& t, const NewEvent* events, TupleDesc desc, Delivery* d, int n, int64 lease_ms) {
    TimestampTz now = GetCurrentTransactionStartTimestamp();
    for (int i = 0; i < n; i++) {
        clear_next(t);
        Datum* v = t.next->tts_values;
        bool* null = t.next->tts_isnull;
        bool isnull = false;
        v[deliveries::kEventId - 1] = heap_getattr(events[d[i].event].tuple, events::kId, desc, &isnull);
        v[deliveries::kEndpointId - 1] = Int32GetDatum(d[i].endpoint);
        v[deliveries::kSeq - 1] = Int64GetDatum(d[i].seq);
        v[deliveries::kKey - 1] = d[i].key;
        v[deliveries::kState - 1] = CStringGetTextDatum("pending");
        v[deliveries::kAttempts - 1] = Int32GetDatum(d[i].leased ? 1 : 0);
        TimestampTz next = now;
        if (d[i].parked) TIMESTAMP_NOEND(next);
        else if (d[i].leased) next = TimestampTzPlusMilliseconds(now, lease_ms);
        v[deliveries::kNextAttemptAt - 1] = TimestampTzGetDatum(next);
        v[deliveries::kLastAttemptAt - 1] = TimestampTzGetDatum(now);
        v[deliveries::kCreatedAt - 1] = TimestampTzGetDatum(now);
        for (int c : {deliveries::kEventId, deliveries::kEndpointId, deliveries::kSeq, deliveries::kState,
                      deliveries::kAttempts, deliveries::kNextAttemptAt, deliveries::kCreatedAt})
            null[c - 1] = false;
        v[deliveries::kCallbackAttempts - 1] = Int32GetDatum(0);
        null[deliveries::kCallbackAttempts - 1] = false;
        if (d[i].callback) {
            v[deliveries::kCallbackState - 1] = CStringGetTextDatum("waiting");
            null[deliveries::kCallbackState - 1] = false;
        }
        null[deliveries::kKey - 1] = d[i].key == 0;
        null[deliveries::kLastAttemptAt - 1] = !d[i].leased;
        ExecStoreVirtualTuple(t.next);
        d[i].made = insert_next_unless_present(t);
    }
}

void note_filter_errors(const Route* routes, int n) {
    Datum* ids = static_cast<Datum*>(palloc(sizeof(Datum) * (n > 0 ? n : 1)));
    Datum* counts = static_cast<Datum*>(palloc(sizeof(Datum) * (n > 0 ? n : 1)));
    int k = 0;
    for (int i = 0; i < n; i++)
        if (routes[i].filter_errors > 0) {
            ids[k] = Int32GetDatum(routes[i].id);
            counts[k++] = Int64GetDatum(routes[i].filter_errors);
        }
    if (k == 0) return;
    Datum values[2] = {PointerGetDatum(construct_array(ids, k, INT4OID, 4, true, TYPALIGN_INT)),
                       PointerGetDatum(construct_array(counts, k, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE))};
    int updated = execute(filter_failed_plan, values, nullptr, SPI_OK_UPDATE_RETURNING);
    StringInfoData first;
    initStringInfo(&first);
    for (int i = 0; i < updated; i++) {
        HeapTuple row = SPI_tuptable->vals[i];
        bool null = false;
        if (!DatumGetBool(SPI_getbinval(row, SPI_tuptable->tupdesc, 3, &null))) continue;
        appendStringInfo(&first, "%s\"%s\" (%s)", first.len > 0 ? ", " : "", SPI_getvalue(row, SPI_tuptable->tupdesc, 1),
                         SPI_getvalue(row, SPI_tuptable->tupdesc, 2));
    }
    if (first.len > 0)
        ereport(LOG, (errmsg("outbox: the filter of endpoint %s failed on an event; such events are not "
                             "delivered there",
                             first.data),
                      errdetail("A filter that cannot be evaluated on a payload counts as no match. "
                                "outbox.endpoint_status.filter_errors counts them.")));
}

// The leased deliveries as a claim returns them, in seq order.
void hand_out(const NewEvent* events, TupleDesc desc, const Delivery* d, int n, MemoryContext out,
              DispatchResult* result) {
    result->leased = static_cast<ClaimedRow*>(MemoryContextAllocZero(out, sizeof(ClaimedRow) * (n > 0 ? n : 1)));
    MemoryContext old = MemoryContextSwitchTo(out);
    TimestampTz now = GetCurrentTransactionStartTimestamp();
    for (int i = 0; i < n; i++) {
        if (!d[i].leased || !d[i].made) {
            if (d[i].made && !d[i].parked) result->left_due++;
            continue;
        }
        HeapTuple tuple = events[d[i].event].tuple;
        ClaimedRow& row = result->leased[result->n_leased++];
        bool null = false;
        Datum id = heap_getattr(tuple, events::kId, desc, &null);
        row.event_uuid = *DatumGetUUIDP(id);
        row.event_id = DatumGetCString(DirectFunctionCall1(uuid_out, id));
        row.endpoint_id = d[i].endpoint;
        row.attempt = 1;
        row.topic = TextDatumGetCString(heap_getattr(tuple, events::kTopic, desc, &null));
        Jsonb* payload = DatumGetJsonbP(heap_getattr(tuple, events::kPayload, desc, &null));
        row.payload = JsonbToCString(nullptr, &payload->root, VARSIZE(payload));
        row.payload_len = static_cast<int>(strlen(row.payload));
        Datum headers = heap_getattr(tuple, events::kHeaders, desc, &null);
        row.header_lines = null ? nullptr : header_lines_of(DatumGetJsonbP(headers));
        row.created_at = now;
        row.key = d[i].key == 0 ? nullptr : TextDatumGetCString(d[i].key);
        row.seq = d[i].seq;
    }
    MemoryContextSwitchTo(old);
    qsort(result->leased, result->n_leased, sizeof(ClaimedRow), by_seq);
}

}  // namespace

void dispatch_events(const DispatchRequest& request, MemoryContext out, DispatchResult* result) {
    *result = DispatchResult{};
    Relation events = open_events();
    Relation events_dispatch = open_index("events_dispatch");
    DirectTable state;
    Pass pass;
    PassLock lock = lock_pass(state, events, events_dispatch, &pass);
    if (lock == PassLock::Locked) {
        if (pass.restored) execute(place_restored_plan, nullptr, nullptr, SPI_OK_SELECT);
        start_pass(&pass);
        Route* routes = nullptr;
        int nroutes = read_routes(pass.snapshot, request.include_default, &routes);
        // With no endpoint to deliver to, events wait: the pass stays where it is.
        if (nroutes > 0) {
            NewEvent* found = nullptr;
            TupleDesc desc = RelationGetDescr(events);
            int n = scan_new_events(events, events_dispatch, pass, request.max_events, &found);
            Delivery* d = nullptr;
            int nd = route_events(found, n, desc, routes, nroutes, &d);
            DirectTable deliveries;
            open_deliveries(deliveries, true);
            park(deliveries, d, nd, pass.snapshot);
            lease(d, nd, request);
            insert_deliveries(deliveries, found, desc, d, nd, request.lease_ms);
            close_direct(deliveries);
            move_pass_on(state, pass, n, request.max_events, n > 0 ? found[n - 1].txid : 0,
                         n > 0 ? found[n - 1].seq : 0);
            result->dispatched = n;
            hand_out(found, desc, d, nd, out, result);
            note_filter_errors(routes, nroutes);
        }
        UnregisterSnapshot(pass.snapshot);
    } else if (lock == PassLock::Busy) {
        result->dispatched = -1;  // another dispatcher: what it does not see, a next call will
    }
    close_direct(state);
    index_close(events_dispatch, AccessShareLock);
    table_close(events, AccessShareLock);
}

}  // namespace outbox::pg
