// Naming a callback, and outbox.set_endpoint_callback() (callback_name.hpp).
#include "pg/callback_name.hpp"

#include "pg/compat.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(outbox_set_endpoint_callback);
}

namespace outbox::pg {

namespace {

constexpr const char* kSignatureHint =
    "A callback is a function of one argument of type outbox.delivery_result, named with its schema: "
    "CREATE FUNCTION app.on_result(r outbox.delivery_result) RETURNS void ...";

[[noreturn]] void refuse(int code, const char* message, const char* name) {
    ereport(ERROR, (errcode(code), errmsg(message, name), errhint("%s", kSignatureHint)));
    pg_unreachable();
}

}  // namespace

Oid delivery_result_type() {
    Oid type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("delivery_result"),
                               ObjectIdGetDatum(get_namespace_oid("outbox", false)));
    if (!OidIsValid(type))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("type outbox.delivery_result does not exist"),
                        errhint("Update the extension: ALTER EXTENSION outbox UPDATE.")));
    return type;
}

char* name_callback(const char* name, Oid role) {
    List* names = compat::qualified_name_list(name);
    if (list_length(names) < 2)
        refuse(ERRCODE_INVALID_PARAMETER_VALUE, "callback \"%s\" must be named with its schema", name);
    Oid type = delivery_result_type();
    Oid fn = LookupFuncName(names, 1, &type, true);
    if (!OidIsValid(fn)) refuse(ERRCODE_UNDEFINED_FUNCTION, "function %s(outbox.delivery_result) does not exist", name);
    if (get_func_prokind(fn) != PROKIND_FUNCTION || get_func_retset(fn))
        refuse(ERRCODE_WRONG_OBJECT_TYPE, "%s is not a function returning one value", name);
    if (isAnyTempNamespace(get_func_namespace(fn)))
        refuse(ERRCODE_INVALID_PARAMETER_VALUE, "callback %s is a temporary function", name);
    char* qualified = format_procedure_qualified(fn);
    if (!compat::may_execute(fn, role)) {
        const char* role_name = GetUserNameFromId(role, false);
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("permission denied for function %s", qualified),
                        errdetail("A callback runs as the role that names it, here \"%s\".", role_name),
                        errhint("GRANT EXECUTE ON FUNCTION %s TO %s", qualified, quote_identifier(role_name))));
    }
    return qualified;
}

void as_extension_owner(void (*body)(void*), void* arg) {
    Oid schema = get_namespace_oid("outbox", false);
    HeapTuple tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(schema));
    if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for schema %u", schema);
    Oid owner = reinterpret_cast<Form_pg_namespace>(GETSTRUCT(tuple))->nspowner;
    ReleaseSysCache(tuple);
    Oid saved_user;
    int saved_context;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    SetUserIdAndSecContext(owner, saved_context | SECURITY_LOCAL_USERID_CHANGE);
    PG_TRY();
    {
        body(arg);
    }
    PG_FINALLY();
    {
        SetUserIdAndSecContext(saved_user, saved_context);
    }
    PG_END_TRY();
}

namespace {

struct EndpointCallback {
    Datum endpoint;  // text
    char* on_result;  // nullptr: none
    char* role;
};

// The endpoint's callback and its role; its pending deliveries will call it
// (dispatch marks the new ones).
void write_endpoint_callback(void* arg) {
    const EndpointCallback& c = *static_cast<EndpointCallback*>(arg);
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    Oid types[3] = {TEXTOID, TEXTOID, TEXTOID};
    Datum values[3] = {c.endpoint, c.on_result ? CStringGetTextDatum(c.on_result) : (Datum)0,
                       c.role ? CStringGetTextDatum(c.role) : (Datum)0};
    char nulls[3] = {' ', c.on_result ? ' ' : 'n', c.role ? ' ' : 'n'};
    int rc = SPI_execute_with_args(R"sql(
WITH ep AS (
    UPDATE outbox.endpoints AS ep
    SET on_result = $2, on_result_role = $3, updated_at = pg_catalog.now()
    WHERE ep.id = outbox.endpoint_id($1, true)
    RETURNING ep.id
)
UPDATE outbox.deliveries AS d SET callback_state = 'waiting'
FROM ep
WHERE $2 IS NOT NULL AND d.endpoint_id = ep.id AND d.state = 'pending' AND d.callback_state IS NULL
)sql", 3, types, values, nulls, false, 0);
    if (rc != SPI_OK_UPDATE) elog(ERROR, "setting the callback failed: %s", SPI_result_code_string(rc));
    SPI_finish();
}

}  // namespace

}  // namespace outbox::pg

using namespace outbox::pg;

// outbox.set_endpoint_callback(endpoint, on_result): '' or NULL removes it.
extern "C" Datum outbox_set_endpoint_callback(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("endpoint must not be null")));
    EndpointCallback c{PG_GETARG_DATUM(0), nullptr, nullptr};
    if (!PG_ARGISNULL(1)) {
        char* name = TextDatumGetCString(PG_GETARG_DATUM(1));
        if (name[0] != '\0') {
            Oid role = GetUserId();
            c.on_result = name_callback(name, role);
            c.role = GetUserNameFromId(role, false);
        }
    }
    as_extension_owner(write_endpoint_callback, &c);
    PG_RETURN_VOID();
}
