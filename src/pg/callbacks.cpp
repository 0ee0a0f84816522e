// Calling callbacks (callbacks.hpp): the delivery_result built from the
// delivery, its event and endpoint; the call as the naming role, in an
// internal subtransaction (as PL/pgSQL's exception blocks run theirs).
#include "pg/callbacks.hpp"

#include "pg/callback_name.hpp"
#include "pg/compat.hpp"
#include "pg/plan.hpp"
#include "pg/spi_values.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/user.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/typcache.h"
}

namespace outbox::pg {

namespace {

// The calls' rows; the function and role are the event's when it names
// one, else the endpoint's.
Plan fetch_plan{R"sql(
SELECT x.i::int4, e.id, e.topic, e.key, e.payload, e.headers, ep.name, d.state, d.attempts, d.last_status,
       d.last_response, d.last_response_headers,
       CASE WHEN e.on_result IS NOT NULL THEN e.on_result ELSE ep.on_result END,
       CASE WHEN e.on_result IS NOT NULL THEN e.on_result_role ELSE ep.on_result_role END
FROM unnest($1::uuid[], $2::integer[]) WITH ORDINALITY AS x(event_id, endpoint_id, i)
JOIN outbox.deliveries AS d ON d.event_id = x.event_id AND d.endpoint_id = x.endpoint_id
JOIN outbox.events AS e ON e.id = x.event_id
JOIN outbox.endpoints AS ep ON ep.id = x.endpoint_id
ORDER BY d.seq
)sql", 2, {UUIDARRAYOID, INT4ARRAYOID}, nullptr};

constexpr int kFields = 12;  // outbox.delivery_result's
constexpr int kResponseField = 9;  // response (0-based), filled from response_text when it is JSON

// One call, read and copied before any callback runs.
struct Prepared {
    int call;
    char* function;
    char* role;
    Datum values[kFields];
    bool nulls[kFields];
    char* response_text;  // nullptr: none
};

// Whether `text` may be JSON (its first non-blank character could start a
// value): only then is it parsed.
bool may_be_json(const char* body) {
    while (*body == ' ' || *body == '\t' || *body == '\n' || *body == '\r') body++;
    return *body != '\0' && strchr("{[\"-0123456789tfn", *body) != nullptr;
}

// The call itself: as `role`, restricted, with a safe search_path; EXECUTE
// checked again for that role. Raises on any failure (the caller's
// subtransaction is rolled back then, which also restores the user and
// the settings).
void invoke(const Prepared& p, TupleDesc desc, Datum response) {
    Datum values[kFields];
    bool nulls[kFields];
    memcpy(values, p.values, sizeof(values));
    memcpy(nulls, p.nulls, sizeof(nulls));
    values[kResponseField] = response;
    nulls[kResponseField] = response == 0;
    if (p.function == nullptr || p.role == nullptr)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_FUNCTION), errmsg("the callback's function or role is missing")));
    Oid role = get_role_oid(p.role, false);
    Oid fn = DatumGetObjectId(DirectFunctionCall1(regprocedurein, CStringGetDatum(p.function)));
    Datum arg = HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));

    Oid saved_user;
    int saved_context;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    SetUserIdAndSecContext(role, saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    int nest = NewGUCNestLevel();
    (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
                            0, false);
    if (!compat::may_execute(fn, role))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("permission denied for function %s", p.function),
                        errdetail("The callback runs as role \"%s\", which named it.", p.role),
                        errhint("GRANT EXECUTE ON FUNCTION %s TO %s", p.function, quote_identifier(p.role))));
    FmgrInfo flinfo;
    fmgr_info(fn, &flinfo);
    LOCAL_FCINFO(fcinfo, 1);
    InitFunctionCallInfoData(*fcinfo, &flinfo, 1, InvalidOid, nullptr, nullptr);
    fcinfo->args[0].value = arg;
    fcinfo->args[0].isnull = false;
    (void)FunctionCallInvoke(fcinfo);
    AtEOXact_GUC(false, nest);
    SetUserIdAndSecContext(saved_user, saved_context);
}

enum class Outcome { Done, Failed, NotJson };

// One call in an internal subtransaction. A response that looked like JSON
// but does not parse is no failure of the callback (NotJson: call again
// with response NULL).
Outcome call_once(const Prepared& p, TupleDesc desc, bool json, char** error) {
    MemoryContext cxt = CurrentMemoryContext;
    ResourceOwner owner = CurrentResourceOwner;
    volatile bool parsing = json;
    volatile Outcome outcome = Outcome::Done;
    BeginInternalSubTransaction(nullptr);
    MemoryContextSwitchTo(cxt);
    PG_TRY();
    {
        Datum response = json ? DirectFunctionCall1(jsonb_in, CStringGetDatum(p.response_text)) : 0;
        parsing = false;
        invoke(p, desc, response);
        ReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(cxt);
        CurrentResourceOwner = owner;
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(cxt);
        ErrorData* edata = CopyErrorData();
        FlushErrorState();
        RollbackAndReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(cxt);
        CurrentResourceOwner = owner;
        if (parsing) {
            outcome = Outcome::NotJson;
        } else {
            outcome = Outcome::Failed;
            *error = edata->message ? pstrdup(edata->message) : pstrdup("unknown error");
        }
        FreeErrorData(edata);
    }
    PG_END_TRY();
    return outcome;
}

Prepared read_call(HeapTuple row, TupleDesc result) {
    Prepared p{};
    bool null = false;
    p.call = DatumGetInt32(heap_getattr(row, 1, result, &null)) - 1;
    // event_id, topic, key, payload, headers, endpoint, state, attempts, status: columns 2..10
    for (int f = 0; f < 9; f++) p.values[f] = heap_getattr(row, f + 2, result, &p.nulls[f]);
    p.nulls[kResponseField] = true;
    Datum body = heap_getattr(row, 11, result, &p.nulls[10]);
    p.values[10] = body;
    p.response_text = p.nulls[10] ? nullptr : TextDatumGetCString(body);
    p.values[11] = heap_getattr(row, 12, result, &p.nulls[11]);
    Datum function = heap_getattr(row, 13, result, &null);
    p.function = null ? nullptr : TextDatumGetCString(function);
    Datum role_name = heap_getattr(row, 14, result, &null);
    p.role = null ? nullptr : TextDatumGetCString(role_name);
    return p;
}

}  // namespace

void call_callbacks(CallbackCall* calls, int n) {
    if (n == 0) return;
    // The rows this transaction just wrote are to be seen.
    CommandCounterIncrement();
    const pg_uuid_t** ids = static_cast<const pg_uuid_t**>(palloc(sizeof(pg_uuid_t*) * n));
    int32* endpoints = static_cast<int32*>(palloc(sizeof(int32) * n));
    for (int i = 0; i < n; i++) {
        ids[i] = calls[i].event_id;
        endpoints[i] = calls[i].endpoint_id;
    }
    Datum args[2] = {uuid_array(ids, n), int4_array(endpoints, n)};
    int found = execute(fetch_plan, args, nullptr, SPI_OK_SELECT);
    TupleDesc result = SPI_tuptable->tupdesc;
    Prepared* prepared = static_cast<Prepared*>(palloc(sizeof(Prepared) * (found > 0 ? found : 1)));
    for (int k = 0; k < found; k++) prepared[k] = read_call(heap_copytuple(SPI_tuptable->vals[k]), result);
    TupleDesc desc = lookup_rowtype_tupdesc_copy(delivery_result_type(), -1);
    for (int k = 0; k < found; k++) {
        const Prepared& p = prepared[k];
        if (p.function == nullptr) continue;  // no longer named
        char* error = nullptr;
        bool json = p.response_text != nullptr && may_be_json(p.response_text);
        Outcome outcome = call_once(p, desc, json, &error);
        if (outcome == Outcome::NotJson) outcome = call_once(p, desc, false, &error);
        if (outcome == Outcome::Failed) {
            calls[p.call].error = error;
            ereport(LOG, (errmsg("outbox: callback %s failed: %s", p.function, error),
                          errdetail("It is called again later; outbox.deliveries.callback_error keeps the error.")));
        }
    }
}

}  // namespace outbox::pg
