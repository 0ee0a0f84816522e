// Which endpoints each new event goes to (dispatch_pass.hpp): the topic
// patterns (core::topic_matches, the rule of outbox.topic_matches()), the
// operational events' own endpoint left out, the filters evaluated.
#include "pg/dispatch_pass.hpp"

#include "core/validate.hpp"
#include "pg/queue_tables.hpp"

#include <string_view>

extern "C" {
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
}

namespace outbox::pg {

namespace {

std::string_view view_of(Datum text_datum) {
    text* t = DatumGetTextPP(text_datum);
    return std::string_view(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

AttrNumber attnum_of(TupleDesc desc, const char* name) {
    for (int i = 0; i < desc->natts; i++)
        if (!TupleDescAttr(desc, i)->attisdropped && strcmp(NameStr(TupleDescAttr(desc, i)->attname), name) == 0)
            return static_cast<AttrNumber>(i + 1);
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN), errmsg("outbox.endpoints has no column \"%s\"", name),
                    errhint("Reinstall the extension, or undo the change to the table.")));
    pg_unreachable();
}

bool topic_matches(const Route& route, std::string_view topic) {
    for (int i = 0; i < route.ntopics; i++)
        if (route.topics[i] != 0 && core::topic_matches(view_of(route.topics[i]), topic)) return true;
    return false;
}

// payload ->> 'endpoint' of an operational event (outbox.*): the endpoint
// it is about; false when there is none.
bool about_endpoint(Jsonb* payload, StringInfo about) {
    JsonbValue v;
    if (!JB_ROOT_IS_OBJECT(payload) || getKeyJsonValueFromContainer(&payload->root, "endpoint", 8, &v) == nullptr ||
        v.type == jbvNull)
        return false;
    if (v.type == jbvString) appendBinaryStringInfo(about, v.val.string.val, v.val.string.len);
    else if (v.type == jbvBinary) (void)JsonbToCString(about, v.val.binary.data, v.val.binary.len);
    else {
        Jsonb* scalar = JsonbValueToJsonb(&v);
        (void)JsonbToCString(about, &scalar->root, VARSIZE(scalar));
    }
    return true;
}

// jsonb_path_match(payload, filter, '{}', true): true, false, or NULL (as
// -1) when the filter cannot be evaluated on it.
int filter_passes(Datum payload, Datum filter) {
    static Datum no_vars = 0;
    if (no_vars == 0) {
        MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
        no_vars = DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
        MemoryContextSwitchTo(old);
    }
    FmgrInfo flinfo;
    fmgr_info(F_JSONB_PATH_MATCH, &flinfo);
    LOCAL_FCINFO(fcinfo, 4);
    InitFunctionCallInfoData(*fcinfo, &flinfo, 4, InvalidOid, nullptr, nullptr);
    Datum args[4] = {payload, filter, no_vars, BoolGetDatum(true)};
    for (int i = 0; i < 4; i++) {
        fcinfo->args[i].value = args[i];
        fcinfo->args[i].isnull = false;
    }
    Datum passes = FunctionCallInvoke(fcinfo);
    return fcinfo->isnull ? -1 : DatumGetBool(passes);
}

}  // namespace

int read_routes(Snapshot snapshot, bool include_default, Route** out) {
    Relation rel = table_open(get_relname_relid("endpoints", get_namespace_oid("outbox", false)), AccessShareLock);
    TupleDesc desc = RelationGetDescr(rel);
    AttrNumber id = attnum_of(desc, "id"), name = attnum_of(desc, "name"), topics = attnum_of(desc, "topics"),
               enabled = attnum_of(desc, "enabled"), filter = attnum_of(desc, "filter"),
               on_result = attnum_of(desc, "on_result");
    int capacity = 8, n = 0;
    Route* routes = static_cast<Route*>(palloc(sizeof(Route) * capacity));
    TupleTableSlot* slot = table_slot_create(rel, nullptr);
    TableScanDesc scan = table_beginscan(rel, snapshot, 0, nullptr);
    while (table_scan_getnextslot(scan, ForwardScanDirection, slot)) {
        bool null = false;
        if (!DatumGetBool(slot_getattr(slot, enabled, &null))) continue;
        int32 route_id = DatumGetInt32(slot_getattr(slot, id, &null));
        if (route_id == 0 && !include_default) continue;
        if (n == capacity) routes = static_cast<Route*>(repalloc(routes, sizeof(Route) * (capacity *= 2)));
        Route& r = routes[n++];
        r = Route{};
        r.id = route_id;
        r.name = TextDatumGetCString(slot_getattr(slot, name, &null));
        bool* nulls = nullptr;
        deconstruct_array(DatumGetArrayTypePCopy(slot_getattr(slot, topics, &null)), TEXTOID, -1, false, TYPALIGN_INT,
                          &r.topics, &nulls, &r.ntopics);
        for (int i = 0; i < r.ntopics; i++)
            if (nulls[i]) r.topics[i] = 0;
        Datum f = slot_getattr(slot, filter, &null);
        r.filter = null ? 0 : PointerGetDatum(PG_DETOAST_DATUM_COPY(f));
        (void)slot_getattr(slot, on_result, &null);
        r.callback = !null;
    }
    table_endscan(scan);
    ExecDropSingleTupleTableSlot(slot);
    table_close(rel, AccessShareLock);
    *out = routes;
    return n;
}

int route_events(const NewEvent* events, int n, TupleDesc desc, Route* routes, int nroutes, Delivery** out) {
    int capacity = n * nroutes, made = 0;
    Delivery* deliveries = static_cast<Delivery*>(palloc(sizeof(Delivery) * (capacity > 0 ? capacity : 1)));
    StringInfoData about;
    initStringInfo(&about);
    for (int e = 0; e < n; e++) {
        HeapTuple tuple = events[e].tuple;
        bool null = false;
        std::string_view topic = view_of(heap_getattr(tuple, events::kTopic, desc, &null));
        Datum key = heap_getattr(tuple, events::kKey, desc, &null);
        if (null) key = 0;
        Datum payload = heap_getattr(tuple, events::kPayload, desc, &null);
        (void)heap_getattr(tuple, events::kOnResult, desc, &null);
        bool event_callback = !null;
        resetStringInfo(&about);
        bool operational = core::is_reserved_topic(topic) && about_endpoint(DatumGetJsonbP(payload), &about);
        for (int r = 0; r < nroutes; r++) {
            Route& route = routes[r];
            if (!topic_matches(route, topic)) continue;
            if (operational && strcmp(about.data, route.name) == 0) continue;  // not to the endpoint it is about
            if (route.filter != 0) {
                int passes = filter_passes(payload, route.filter);
                if (passes < 0) route.filter_errors++;
                if (passes != 1) continue;
            }
            Delivery& d = deliveries[made++];
            d = Delivery{};
            d.event = e;
            d.endpoint = route.id;
            d.seq = events[e].seq;
            d.key = key;
            d.callback = event_callback || route.callback;
        }
    }
    *out = deliveries;
    return made;
}

}  // namespace outbox::pg
