// The row insert of enqueue(), without SQL (see event_insert.hpp).
//
// A planned INSERT run through SPI costs a plan-cache check, an executor
// start with expression set-up for the VALUES and the column defaults, and
// an SPI connection: together about as much as the heap and index writes
// themselves. Here the defaults are computed in C (the same functions the
// table's DEFAULT clauses call) and the row goes through
// ExecSimpleRelationInsert, which still checks constraints, maintains every
// index (including ones a user may add) and counts the insert for
// autovacuum.
#include "pg/event_insert.hpp"

#include "pg/compat.hpp"

extern "C" {
#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/reltrigger.h"
#include "utils/xid8.h"
}

namespace outbox::pg {

namespace {

// outbox.events as the extension script creates it, in column order.
struct Column {
    const char* name;
    Oid type;
};
constexpr Column kColumns[] = {
    {"id", UUIDOID},      {"seq", INT8OID},      {"txid", XID8OID},     {"topic", TEXTOID},
    {"key", TEXTOID},     {"payload", JSONBOID}, {"headers", JSONBOID}, {"created_at", TIMESTAMPTZOID},
    {"on_result", TEXTOID}, {"on_result_role", TEXTOID},
};
constexpr int kNumColumns = sizeof(kColumns) / sizeof(kColumns[0]);
constexpr AttrNumber kSeqAttnum = 2;

// What was learned of outbox.events; forgotten whenever its relcache entry
// is invalidated (ALTER TABLE, CREATE TRIGGER, DROP EXTENSION, ...).
struct Known {
    Oid relid = InvalidOid;
    bool direct = false;  // its shape is the one this code writes
    Oid seq = InvalidOid;  // the identity sequence behind seq
};
Known known;
bool callback_registered = false;

void forget(Datum, Oid relid) {
    if (relid == InvalidOid || relid == known.relid) known = Known{};
}

// The trigger the install script puts on the table places rows that a
// restore loads (restore.sql); rows written here are enqueue()'s own and
// need no placing, so it is the one trigger this insert may pass by.
constexpr const char* kRestoreTrigger = "events_restore";

bool only_restore_trigger(const TriggerDesc* triggers) {
    return triggers == nullptr ||
           (triggers->numtriggers == 1 && strcmp(triggers->triggers[0].tgname, kRestoreTrigger) == 0);
}

bool shaped_as_created(Relation rel) {
    if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relrowsecurity || !only_restore_trigger(rel->trigdesc))
        return false;
    TupleDesc desc = RelationGetDescr(rel);
    if (desc->natts != kNumColumns) return false;
    if (desc->constr != nullptr && desc->constr->has_generated_stored) return false;
    for (int i = 0; i < kNumColumns; i++) {
        Form_pg_attribute attr = TupleDescAttr(desc, i);
        if (attr->attisdropped || attr->atttypid != kColumns[i].type ||
            strcmp(NameStr(attr->attname), kColumns[i].name) != 0)
            return false;
    }
    return TupleDescAttr(desc, kSeqAttnum - 1)->attidentity == ATTRIBUTE_IDENTITY_ALWAYS;
}

// ExecSimpleRelationInsert with the executor state it needs, as the
// logical replication apply worker sets it up for one row.
void insert_row(Relation rel, Datum* values, bool* nulls) {
    EState* estate = CreateExecutorState();
    RangeTblEntry* rte = makeNode(RangeTblEntry);
    rte->rtekind = RTE_RELATION;
    rte->relid = RelationGetRelid(rel);
    rte->relkind = rel->rd_rel->relkind;
    rte->rellockmode = RowExclusiveLock;
    compat::init_range_table(estate, rte);
    ResultRelInfo* result = makeNode(ResultRelInfo);
    InitResultRelInfo(result, rel, 1, nullptr, 0);
    result->ri_TrigDesc = nullptr;  // only the restore trigger (shaped_as_created)
    estate->es_output_cid = GetCurrentCommandId(true);
    ExecOpenIndices(result, false);

    TupleTableSlot* slot = ExecInitExtraTupleSlot(estate, RelationGetDescr(rel), &TTSOpsVirtual);
    ExecClearTuple(slot);
    memcpy(slot->tts_values, values, sizeof(Datum) * kNumColumns);
    memcpy(slot->tts_isnull, nulls, sizeof(bool) * kNumColumns);
    ExecStoreVirtualTuple(slot);
    ExecSimpleRelationInsert(result, estate, slot);

    ExecCloseIndices(result);
    ExecResetTupleTable(estate->es_tupleTable, false);
    FreeExecutorState(estate);
}

}  // namespace

bool insert_event_directly(const EventRow& row) {
    if (!callback_registered) {
        CacheRegisterRelcacheCallback(forget, 0);
        callback_registered = true;
    }
    // What the executor checks before any INSERT, with its messages.
    PreventCommandIfReadOnly("INSERT");
    PreventCommandIfParallelMode("INSERT");

    Oid relid = get_relname_relid("events", get_namespace_oid("outbox", false));
    if (!OidIsValid(relid))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation \"outbox.events\" does not exist"),
                        errhint("Reinstall the extension: DROP EXTENSION outbox; CREATE EXTENSION outbox;")));
    // Opening takes the lock and processes invalidations, so `known` is
    // current from here on.
    Relation rel = table_open(relid, RowExclusiveLock);
    if (known.relid != relid) {
        known = Known{};
        known.direct = shaped_as_created(rel);
        if (known.direct) known.seq = compat::identity_sequence(rel, kSeqAttnum);
        known.relid = relid;
    }
    if (!known.direct) {
        table_close(rel, NoLock);
        return false;
    }

    Datum values[kNumColumns];
    bool nulls[kNumColumns] = {};
    values[0] = row.id;
    values[1] = Int64GetDatum(nextval_internal(known.seq, false));             // GENERATED ALWAYS AS IDENTITY
    values[2] = FullTransactionIdGetDatum(GetTopFullTransactionId());          // pg_current_xact_id()
    values[3] = row.topic;
    values[4] = row.key;
    nulls[4] = row.key_null;
    values[5] = row.payload;
    values[6] = row.headers;
    nulls[6] = row.headers_null;
    values[7] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());  // now()
    values[8] = row.on_result;
    nulls[8] = row.on_result == 0;
    values[9] = row.on_result_role;
    nulls[9] = row.on_result_role == 0;
    insert_row(rel, values, nulls);
    table_close(rel, NoLock);  // the lock is held to the end of the transaction
    return true;
}

}  // namespace outbox::pg
