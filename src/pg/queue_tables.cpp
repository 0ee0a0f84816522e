#include "pg/queue_tables.hpp"

extern "C" {
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "executor/executor.h"
#include "utils/rel.h"
}

namespace outbox::pg {

namespace {

struct ColumnShape {
    const char* name;
    Oid type;
};

constexpr ColumnShape kDeliveries[] = {
    {"event_id", UUIDOID},        {"endpoint_id", INT4OID},       {"seq", INT8OID},
    {"key", TEXTOID},             {"state", TEXTOID},             {"attempts", INT4OID},
    {"next_attempt_at", TIMESTAMPTZOID}, {"last_attempt_at", TIMESTAMPTZOID}, {"last_status", INT4OID},
    {"last_error", TEXTOID},      {"last_duration", INTERVALOID}, {"last_response", TEXTOID},
    {"finished_at", TIMESTAMPTZOID}, {"created_at", TIMESTAMPTZOID}, {"callback_state", TEXTOID},
    {"callback_attempts", INT4OID}, {"callback_next_at", TIMESTAMPTZOID}, {"callback_error", TEXTOID},
    {"last_response_headers", JSONBOID}};
constexpr ColumnShape kEvents[] = {
    {"id", UUIDOID},     {"seq", INT8OID},       {"txid", XID8OID},       {"topic", TEXTOID},
    {"key", TEXTOID},    {"payload", JSONBOID},  {"headers", JSONBOID},   {"created_at", TIMESTAMPTZOID},
    {"on_result", TEXTOID}, {"on_result_role", TEXTOID}};
constexpr ColumnShape kDispatchState[] = {
    {"singleton", BOOLOID},         {"done_snapshot", PG_SNAPSHOTOID}, {"target_snapshot", PG_SNAPSHOTOID},
    {"cursor_txid", XID8OID},       {"cursor_seq", INT8OID},           {"restored_at", TIMESTAMPTZOID},
    {"restored_done_snapshot", PG_SNAPSHOTOID}, {"restored_target_snapshot", PG_SNAPSHOTOID},
    {"restored_cursor_txid", XID8OID}, {"restored_cursor_seq", INT8OID}};
constexpr ColumnShape kAttempts[] = {
    {"event_id", UUIDOID},  {"endpoint_id", INT4OID}, {"attempt", INT4OID}, {"started_at", TIMESTAMPTZOID},
    {"duration", INTERVALOID}, {"status", INT4OID},   {"error", TEXTOID},   {"response", TEXTOID}};

// The CHECK constraints tables.sql gives them (PostgreSQL's default names).
constexpr const char* kDeliveriesChecks[] = {"deliveries_state_check", "deliveries_check",
                                             "deliveries_callback_state_check", nullptr};
constexpr const char* kDispatchStateChecks[] = {"dispatch_state_singleton_check", nullptr};

template <std::size_t N>
bool has_shape(Relation rel, const ColumnShape (&shape)[N]) {
    TupleDesc desc = RelationGetDescr(rel);
    bool same = desc->natts == static_cast<int>(N);
    for (std::size_t i = 0; same && i < N; i++) {
        Form_pg_attribute attr = TupleDescAttr(desc, i);
        same = !attr->attisdropped && attr->atttypid == shape[i].type && strcmp(NameStr(attr->attname), shape[i].name) == 0;
    }
    return same;
}

[[noreturn]] void not_as_created(const char* name) {
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("outbox.%s does not have the columns the extension created", name),
                    errhint("Reinstall the extension, or undo the change to the table.")));
    pg_unreachable();
}

template <std::size_t N>
void open_shaped(DirectTable& t, const char* name, const ColumnShape (&shape)[N], const char* const* checks,
                 bool speculative, bool inserts) {
    open_direct(t, name, checks, speculative, inserts);
    if (!has_shape(t.rel, shape)) not_as_created(name);
}

}  // namespace

Relation open_events() {
    Oid relid = get_relname_relid("events", get_namespace_oid("outbox", false));
    if (!OidIsValid(relid)) ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation \"outbox.events\" does not exist")));
    if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK) aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, "events");
    Relation rel = table_open(relid, AccessShareLock);
    if (!has_shape(rel, kEvents)) not_as_created("events");
    return rel;
}

void open_deliveries(DirectTable& t, bool speculative) {
    open_shaped(t, "deliveries", kDeliveries, kDeliveriesChecks, speculative, true);
}

void open_dispatch_state(DirectTable& t) { open_shaped(t, "dispatch_state", kDispatchState, kDispatchStateChecks, false, false); }

void open_attempts(DirectTable& t) { open_shaped(t, "attempts", kAttempts, nullptr, false, true); }

Relation index_named(const DirectTable& t, const char* name) {
    for (int i = 0; i < t.result->ri_NumIndices; i++) {
        Relation index = t.result->ri_IndexRelationDescs[i];
        if (strcmp(RelationGetRelationName(index), name) == 0) return index;
    }
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("index outbox.%s does not exist", name),
                    errhint("Reinstall the extension; the workers need the indexes it creates.")));
    pg_unreachable();
}

Datum column(TupleTableSlot* slot, int column, bool* isnull) { return slot_getattr(slot, column, isnull); }

void copy_current(DirectTable& t) {
    slot_getallattrs(t.current);
    ExecClearTuple(t.next);
    int n = t.next->tts_tupleDescriptor->natts;
    memcpy(t.next->tts_values, t.current->tts_values, sizeof(Datum) * n);
    memcpy(t.next->tts_isnull, t.current->tts_isnull, sizeof(bool) * n);
}

}  // namespace outbox::pg
