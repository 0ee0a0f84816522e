#include "pg/direct_rows.hpp"

#include "pg/compat.hpp"

#include <initializer_list>

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/reltrigger.h"
}

namespace outbox::pg {

namespace {

// Whether every CHECK constraint of `rel` is one of `own`.
bool only_own_checks(Relation rel, const char* const* own) {
    TupleConstr* constr = RelationGetDescr(rel)->constr;
    if (constr == nullptr) return true;
    for (int i = 0; i < constr->num_check; i++) {
        bool known = false;
        for (const char* const* name = own; name && *name; name++) known = known || strcmp(constr->check[i].ccname, *name) == 0;
        if (!known) return false;
    }
    return true;
}

// Whether triggers of `rel` would fire for the rows written here (inserts,
// updates). The extension's own (restore.sql) fire for other commands.
bool has_triggers_for(Relation rel, bool inserts, bool updates) {
    const TriggerDesc* t = rel->trigdesc;
    if (t == nullptr) return false;
    bool on_insert = t->trig_insert_before_row || t->trig_insert_after_row || t->trig_insert_instead_row ||
                     t->trig_insert_before_statement || t->trig_insert_after_statement;
    bool on_update = t->trig_update_before_row || t->trig_update_after_row || t->trig_update_instead_row ||
                     t->trig_update_before_statement || t->trig_update_after_statement;
    return (inserts && on_insert) || (updates && on_update);
}

// What ExecSimpleRelationInsert/Update check before writing: NOT NULL
// always (a user may add one: a loop over the columns), the CHECK
// expressions when there are others than the extension's.
void check_row(DirectTable& t) {
    if (t.checks) {
        ExecConstraints(t.result, t.next, t.estate);
        return;
    }
    TupleDesc desc = RelationGetDescr(t.rel);
    if (desc->constr == nullptr || !desc->constr->has_not_null) return;
    for (int i = 0; i < desc->natts; i++)
        if (TupleDescAttr(desc, i)->attnotnull && t.next->tts_isnull[i])
            ereport(ERROR, (errcode(ERRCODE_NOT_NULL_VIOLATION),
                            errmsg("null value in column \"%s\" of relation \"%s\" violates not-null constraint",
                                   NameStr(TupleDescAttr(desc, i)->attname), RelationGetRelationName(t.rel)),
                            errtablecol(t.rel, i + 1)));
}

void insert_indexes(DirectTable& t, bool update, bool only_summarizing) {
    if (t.result->ri_NumIndices == 0) return;
    List* recheck = compat::insert_index_tuples(t.result, t.next, t.estate, update, false, nullptr, only_summarizing);
    list_free(recheck);
}

}  // namespace

void require_privileges(Oid relid, const char* name, AclMode modes) {
    for (AclMode mode : {ACL_SELECT, ACL_INSERT, ACL_UPDATE})
        if ((modes & mode) && pg_class_aclcheck(relid, GetUserId(), mode) != ACLCHECK_OK)
            aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, name);
}

void open_direct(DirectTable& t, const char* name, const char* const* own, bool speculative, bool inserts) {
    Oid relid = get_relname_relid(name, get_namespace_oid("outbox", false));
    if (!OidIsValid(relid))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation \"outbox.%s\" does not exist", name)));
    // As a statement would: a relay calling outbox.record() (not SECURITY
    // DEFINER) needs the table privileges; the worker is a superuser.
    require_privileges(relid, name, ACL_SELECT | ACL_UPDATE | (inserts ? ACL_INSERT : 0));
    t.rel = table_open(relid, RowExclusiveLock);
    // Rules would be applied by the rewriter, which is not run here.
    if (has_triggers_for(t.rel, inserts, true) || t.rel->rd_rules != nullptr ||
        t.rel->rd_rel->relkind != RELKIND_RELATION || t.rel->rd_rel->relrowsecurity)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("outbox.%s has triggers, rules, row-level security or partitions: the workers cannot write it",
                               name),
                        errhint("Remove what was added to the table; the extension creates it without them.")));
    // A publication of updates needs a replica identity (as UPDATE checks it).
    CheckCmdReplicaIdentity(t.rel, CMD_UPDATE);
    t.checks = !only_own_checks(t.rel, own);
    t.estate = CreateExecutorState();
    RangeTblEntry* rte = makeNode(RangeTblEntry);
    rte->rtekind = RTE_RELATION;
    rte->relid = relid;
    rte->relkind = t.rel->rd_rel->relkind;
    rte->rellockmode = RowExclusiveLock;
    compat::init_range_table(t.estate, rte);
    t.result = makeNode(ResultRelInfo);
    InitResultRelInfo(t.result, t.rel, 1, nullptr, 0);
    t.estate->es_output_cid = GetCurrentCommandId(true);
    ExecOpenIndices(t.result, speculative);
    t.current = ExecInitExtraTupleSlot(t.estate, RelationGetDescr(t.rel), table_slot_callbacks(t.rel));
    t.next = ExecInitExtraTupleSlot(t.estate, RelationGetDescr(t.rel), &TTSOpsVirtual);
}

void close_direct(DirectTable& t) {
    if (t.rel == nullptr) return;
    ExecCloseIndices(t.result);
    ExecResetTupleTable(t.estate->es_tupleTable, false);
    FreeExecutorState(t.estate);
    table_close(t.rel, NoLock);  // the lock is held to the end of the transaction
    t = DirectTable{};
    // What was written is seen by the statements that follow.
    CommandCounterIncrement();
}

void clear_next(DirectTable& t) {
    ExecClearTuple(t.next);
    memset(t.next->tts_isnull, true, sizeof(bool) * t.next->tts_tupleDescriptor->natts);
}

void insert_next(DirectTable& t) {
    check_row(t);
    table_tuple_insert(t.rel, t.next, t.estate->es_output_cid, 0, nullptr);
    insert_indexes(t, false, false);
    ResetPerTupleExprContext(t.estate);
}

// As ExecInsert does for ON CONFLICT DO NOTHING: a row is inserted as
// speculative, its index entries go in without raising on a duplicate, and
// it is confirmed, or taken back when another transaction inserted the same
// key meanwhile (then the check is made again).
bool insert_next_unless_present(DirectTable& t) {
    check_row(t);
    for (;;) {
        CHECK_FOR_INTERRUPTS();
        if (!compat::no_unique_conflict(t.result, t.next, t.estate)) return false;
        TransactionId xid = GetCurrentTransactionId();
        uint32 token = SpeculativeInsertionLockAcquire(xid);
        table_tuple_insert_speculative(t.rel, t.next, t.estate->es_output_cid, 0, nullptr, token);
        bool conflict = false;
        List* recheck = compat::insert_index_tuples(t.result, t.next, t.estate, false, true, &conflict, false);
        table_tuple_complete_speculative(t.rel, t.next, token, !conflict);
        SpeculativeInsertionLockRelease(xid);
        list_free(recheck);
        ResetPerTupleExprContext(t.estate);
        if (!conflict) return true;
    }
}

bool fetch_by_key(DirectTable& t, Relation index, ScanKey keys, int nkeys, Snapshot snapshot) {
    IndexScanDesc scan = compat::index_scan(t.rel, index, snapshot, nkeys);
    index_rescan(scan, keys, nkeys, nullptr, 0);
    bool found = index_getnext_slot(scan, ForwardScanDirection, t.current);
    index_endscan(scan);
    return found;
}

bool rewrite_current(DirectTable& t, Snapshot snapshot, Rewrite rewrite, void* arg) {
    for (;;) {
        if (!rewrite(t, arg)) return false;
        check_row(t);
        TM_FailureData failure;
        compat::IndexUpdate indexes;
        ItemPointerData tid = t.current->tts_tid;
        TM_Result result = compat::update_tuple(t.rel, &tid, t.next, t.estate->es_output_cid, snapshot, &failure,
                                                &indexes);
        if (result == TM_Ok) {
            if (indexes.needed) insert_indexes(t, true, indexes.only_summarizing);
            ResetPerTupleExprContext(t.estate);
            return true;
        }
        if (result == TM_SelfModified || result == TM_Deleted) return false;
        if (result != TM_Updated) elog(ERROR, "outbox: unexpected result %d updating a row", static_cast<int>(result));
        if (IsolationUsesXactSnapshot())  // as UPDATE says it in REPEATABLE READ and SERIALIZABLE
            ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                            errmsg("could not serialize access due to concurrent update")));
        // Changed and committed meanwhile: lock its newest version and look again.
        TM_Result locked = table_tuple_lock(t.rel, &tid, snapshot, t.current, t.estate->es_output_cid,
                                            LockTupleNoKeyExclusive, LockWaitBlock,
                                            TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &failure);
        if (locked != TM_Ok) return false;  // deleted meanwhile
    }
}

void index_key(ScanKey key, Relation index, int column, StrategyNumber strategy, Datum value) {
    Oid family = index->rd_opfamily[column - 1];
    Oid type = index->rd_opcintype[column - 1];
    Oid op = get_opfamily_member(family, type, type, strategy);
    if (!OidIsValid(op)) elog(ERROR, "outbox: no operator for strategy %d of index %s", strategy, RelationGetRelationName(index));
    ScanKeyEntryInitialize(key, 0, static_cast<AttrNumber>(column), strategy, InvalidOid,
                           index->rd_indcollation[column - 1], get_opcode(op), value);
}

}  // namespace outbox::pg
