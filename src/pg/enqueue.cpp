// outbox.enqueue(topic, payload, key, headers, event_id, on_result) RETURNS uuid
//
// SECURITY INVOKER, so that the role naming a callback (on_result) is the
// caller's (callback_name.hpp); the planned insert runs as the extension's
// owner, and the direct one checks no table privilege.
//
// Validates everything first, then writes the event as one row, so that bad
// input never half-applies. The row is written without SQL where it can be
// (event_insert.cpp); this file's planned INSERT is the fallback. After the
// caller's transaction commits, a transaction callback (module.cpp) wakes
// the workers.
#include "pg/enqueue.hpp"

#include "core/error.hpp"
#include "core/uuid.hpp"
#include "core/validate.hpp"
#include "pg/datum.hpp"
#include "pg/callback_name.hpp"
#include "pg/event_insert.hpp"
#include "pg/gucs.hpp"
#include "pg/guard.hpp"
#include "pg/headers_arg.hpp"
#include "pg/trace_headers.hpp"

extern "C" {
#include "commands/async.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"
}

namespace outbox::pg {

namespace {

bool wake_on_commit = false;
bool writing_event = false;

// Marks the rows written while it lives as enqueue()'s own (see
// enqueue_writing()); cleared on the way out, by an error too.
class WritingEvent {
public:
    WritingEvent() { writing_event = true; }
    ~WritingEvent() { writing_event = false; }
    WritingEvent(const WritingEvent&) = delete;
    WritingEvent& operator=(const WritingEvent&) = delete;
};

using core::InvalidInput;

// The body sent is the payload's JSON text, so that is what is measured.
void validate_payload(Jsonb* payload) {
    int binary = VARSIZE(payload) - VARHDRSZ;
    char* textual = pg_call([&] { return JsonbToCString(nullptr, &payload->root, binary); });
    size_t size = strlen(textual);
    pfree(textual);
    core::validate_payload_size(size, static_cast<size_t>(guc_max_payload_size));
}

// One row, nothing else: deliveries are made by the worker (outbox.dispatch).
// With the caller's event_id, an existing id makes this a no-op, which is
// what idempotent enqueue means. A fresh UUIDv7 cannot collide, so that
// insert skips ON CONFLICT's speculative insertion, a measurable part of
// the cost of a one-row insert.
// The planned inserts: plain or idempotent, with a callback or without
// (without, they name only 0.2.0's columns: a new library serves the old
// schema until ALTER EXTENSION outbox UPDATE).
constexpr const char* kInsertSql[2][2] = {
    {"INSERT INTO outbox.events (id, topic, key, payload, headers) VALUES ($1, $2, $3, $4, $5)",
     "INSERT INTO outbox.events (id, topic, key, payload, headers, on_result, on_result_role)\n"
     "VALUES ($1, $2, $3, $4, $5, $6, $7)"},
    {"INSERT INTO outbox.events (id, topic, key, payload, headers) VALUES ($1, $2, $3, $4, $5)\n"
     "ON CONFLICT (id) DO NOTHING",
     "INSERT INTO outbox.events (id, topic, key, payload, headers, on_result, on_result_role)\n"
     "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING"}};

SPIPlanPtr insert_plans[2][2] = {};

// PostgreSQL-only: the planned insert, kept for the session. Used for an
// idempotent enqueue (ON CONFLICT) and when outbox.events is not the table
// insert_event_directly() knows.
struct PlannedInsert {
    bool idempotent;
    const EventRow* row;
};

void insert_event(void* arg) {
    bool idempotent = static_cast<PlannedInsert*>(arg)->idempotent;
    const EventRow& row = *static_cast<PlannedInsert*>(arg)->row;
    bool callback = row.on_result != 0;
    int nargs = callback ? 7 : 5;
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    SPIPlanPtr& plan = insert_plans[idempotent][callback];
    if (plan == nullptr) {
        Oid types[7] = {UUIDOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID, TEXTOID, TEXTOID};
        SPIPlanPtr prepared = SPI_prepare(kInsertSql[idempotent][callback], nargs, types);
        if (prepared == nullptr) elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
        SPI_keepplan(prepared);
        plan = prepared;
    }
    Datum values[7] = {row.id, row.topic, row.key, row.payload, row.headers, row.on_result, row.on_result_role};
    char nulls[7] = {' ', ' ', row.key_null ? 'n' : ' ', ' ', row.headers_null ? 'n' : ' ', ' ', ' '};
    int rc = SPI_execute_plan(plan, values, nulls, false, 0);
    if (rc != SPI_OK_INSERT) elog(ERROR, "inserting the event failed: %s", SPI_result_code_string(rc));
    SPI_finish();
}

// Present and not NULL: argument `n` of a call that may have fewer
// (outbox.emit() has two).
bool has_arg(FunctionCallInfo fcinfo, int n) { return PG_NARGS() > n && !PG_ARGISNULL(n); }

// enqueue() for applications, or (operational) outbox.emit() for the
// extension's own operational events, whose topics are the reserved ones.
Datum enqueue(FunctionCallInfo fcinfo, bool operational) {
    if (PG_ARGISNULL(0))
        throw InvalidInput(InvalidInput::Kind::NullValue, "topic must not be null", {},
                           "Pass a topic such as 'order.created'.");
    if (PG_ARGISNULL(1))
        throw InvalidInput(InvalidInput::Kind::NullValue, "payload must not be null", {},
                           "Pass a JSON value, e.g. '{}'::jsonb.");

    text* topic = pg_call([&] { return PG_GETARG_TEXT_PP(0); });
    core::validate_topic(text_view(topic));
    if (!operational) core::refuse_reserved_topic(text_view(topic));
    else if (!core::is_reserved_topic(text_view(topic)))
        throw InvalidInput(InvalidInput::Kind::InvalidValue, "an operational event's topic must begin with \"outbox.\"");

    Jsonb* payload = pg_call([&] { return PG_GETARG_JSONB_P(1); });
    validate_payload(payload);

    bool key_null = !has_arg(fcinfo, 2);
    text* key = nullptr;
    if (!key_null) {
        key = pg_call([&] { return PG_GETARG_TEXT_PP(2); });
        core::validate_key(text_view(key));
    }

    bool headers_null = !has_arg(fcinfo, 3);
    Jsonb* headers = nullptr;
    if (!headers_null) {
        headers = pg_call([&] { return PG_GETARG_JSONB_P(3); });
        validate_headers_arg(headers);
        if (JB_ROOT_COUNT(headers) == 0) headers_null = true;  // {} means none
    }
    // The application's trace context for this transaction (an explicit
    // header wins); operational events are the worker's own.
    if (!operational && trace_context_set()) {
        headers = pg_call([&] { return with_trace_context(headers_null ? nullptr : headers); });
        headers_null = false;
    }

    pg_uuid_t* id = static_cast<pg_uuid_t*>(pg_call([] { return palloc(sizeof(pg_uuid_t)); }));
    bool caller_id = has_arg(fcinfo, 4);
    if (!caller_id) {
        core::Uuid fresh = core::uuid_v7();
        memcpy(id->data, fresh.data(), UUID_LEN);
    } else {
        memcpy(id->data, PG_GETARG_UUID_P(4)->data, UUID_LEN);
    }

    // The callback, checked for the caller, who is the role it will run as.
    Datum on_result = 0, on_result_role = 0;
    if (!operational && has_arg(fcinfo, 5)) {
        pg_call([&] {
            char* name = TextDatumGetCString(PG_GETARG_DATUM(5));
            if (name[0] == '\0') return;
            Oid role = GetUserId();
            on_result = CStringGetTextDatum(name_callback(name, role));
            on_result_role = CStringGetTextDatum(GetUserNameFromId(role, false));
        });
    }

    WritingEvent writing;
    pg_call([&] {
        EventRow row{UUIDPGetDatum(id),        PointerGetDatum(topic),   PointerGetDatum(key), key_null,
                     PointerGetDatum(payload), PointerGetDatum(headers), headers_null,         on_result,
                     on_result_role};
        if (caller_id || !insert_event_directly(row)) {
            PlannedInsert insert{caller_id, &row};
            as_extension_owner(insert_event, &insert);
        }
        if (guc_notify_on_enqueue) Async_Notify(guc_channel, "");
    });
    wake_on_commit = true;
    return UUIDPGetDatum(id);
}

}  // namespace

bool enqueue_writing() { return writing_event; }

bool take_wake_on_commit() {
    bool wake = wake_on_commit;
    wake_on_commit = false;
    return wake;
}

}  // namespace outbox::pg

extern "C" {
PG_FUNCTION_INFO_V1(outbox_enqueue);
Datum outbox_enqueue(PG_FUNCTION_ARGS) {
    return outbox::pg::report_exceptions("outbox.enqueue", [&] { return outbox::pg::enqueue(fcinfo, false); });
}

PG_FUNCTION_INFO_V1(outbox_emit);
Datum outbox_emit(PG_FUNCTION_ARGS) {
    return outbox::pg::report_exceptions("outbox.emit", [&] { return outbox::pg::enqueue(fcinfo, true); });
}
}
