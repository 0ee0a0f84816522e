// Differences between the PostgreSQL versions the extension builds against
// (15 to 18). Every `#if PG_VERSION_NUM` of the extension is here; the rest
// of src/pg calls these names and stays version-free.
#pragma once

extern "C" {
#include "postgres.h"
#if PG_VERSION_NUM >= 160000
#include "varatt.h"  // VARDATA_ANY and friends left postgres.h in 16
#include "parser/parse_relation.h"
#endif
#include "access/genam.h"
#include "access/tableam.h"
#include "catalog/dependency.h"
#include "executor/executor.h"
#include "nodes/bitmapset.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/wait_event.h"
#include "utils/acl.h"
#include "utils/regproc.h"
#include "catalog/pg_proc.h"
}

namespace outbox::pg::compat {

// An index scan without ORDER BY keys; 18 added the instrumentation
// (EXPLAIN's index searches), which none of these scans report.
inline IndexScanDesc index_scan(Relation heap, Relation index, Snapshot snapshot, int nkeys) {
#if PG_VERSION_NUM >= 180000
    return index_beginscan(heap, index, snapshot, nullptr, nkeys, 0);
#else
    return index_beginscan(heap, index, snapshot, nkeys, 0);
#endif
}

// An executor range table of one relation, as the logical replication apply
// worker builds it for ExecSimpleRelationInsert. 16 added permission infos
// (constraint-violation messages look them up), 18 the unpruned relations.
inline void init_range_table(EState* estate, RangeTblEntry* rte) {
#if PG_VERSION_NUM >= 160000
    List* perminfos = NIL;
    addRTEPermissionInfo(&perminfos, rte);
#endif
#if PG_VERSION_NUM >= 180000
    ExecInitRangeTable(estate, list_make1(rte), perminfos, bms_make_singleton(1));
#elif PG_VERSION_NUM >= 160000
    ExecInitRangeTable(estate, list_make1(rte), perminfos);
#else
    ExecInitRangeTable(estate, list_make1(rte));
#endif
}

// The sequence of an identity column; 17 takes the relation instead of its oid.
inline Oid identity_sequence(Relation rel, AttrNumber attnum) {
#if PG_VERSION_NUM >= 170000
    return getIdentitySequence(rel, attnum, false);
#else
    return getIdentitySequence(RelationGetRelid(rel), attnum, false);
#endif
}

// A wait event set that lives as long as the process (in TopMemoryContext).
// 17 ties it to a resource owner instead of a memory context; none here.
inline WaitEventSet* create_process_wait_event_set(int nevents) {
#if PG_VERSION_NUM >= 170000
    return CreateWaitEventSet(nullptr, nevents);
#else
    return CreateWaitEventSet(TopMemoryContext, nevents);
#endif
}

// A custom wait event, shown by name in pg_stat_activity.wait_event (17+);
// before 17 every extension wait shows as "Extension". May ereport(ERROR).
inline uint32 new_wait_event(const char* name) {
#if PG_VERSION_NUM >= 170000
    return WaitEventExtensionNew(name);
#else
    (void)name;
    return PG_WAIT_EXTENSION;
#endif
}

// table_tuple_update(), waiting for concurrent writers; says whether the
// row's index entries must be inserted (16 also tells when only the
// summarizing ones, such as BRIN, need them).
struct IndexUpdate {
    bool needed = false;
    bool only_summarizing = false;
};
inline TM_Result update_tuple(Relation rel, ItemPointer tid, TupleTableSlot* slot, CommandId cid, Snapshot snapshot,
                              TM_FailureData* tmfd, IndexUpdate* indexes) {
    LockTupleMode mode;
#if PG_VERSION_NUM >= 160000
    TU_UpdateIndexes update = TU_None;
    TM_Result result = table_tuple_update(rel, tid, slot, cid, snapshot, InvalidSnapshot, true, tmfd, &mode, &update);
    indexes->needed = update != TU_None;
    indexes->only_summarizing = update == TU_Summarizing;
#else
    bool update = false;
    TM_Result result = table_tuple_update(rel, tid, slot, cid, snapshot, InvalidSnapshot, true, tmfd, &mode, &update);
    indexes->needed = update;
    indexes->only_summarizing = false;
#endif
    return result;
}

// The index entries of a row just written; with `no_dup_err`, a unique
// conflict sets *conflict instead of raising (speculative insertion).
inline List* insert_index_tuples(ResultRelInfo* result, TupleTableSlot* slot, EState* estate, bool update,
                                 bool no_dup_err, bool* conflict, bool only_summarizing) {
#if PG_VERSION_NUM >= 160000
    return ExecInsertIndexTuples(result, slot, estate, update, no_dup_err, conflict, NIL, only_summarizing);
#else
    (void)only_summarizing;
    return ExecInsertIndexTuples(result, slot, estate, update, no_dup_err, conflict, NIL);
#endif
}

// Whether no unique index already holds the key of `slot` (waiting for
// in-progress inserters); 18 takes the row's own tid (none for an insert).
inline bool no_unique_conflict(ResultRelInfo* result, TupleTableSlot* slot, EState* estate) {
    ItemPointerData conflict;
#if PG_VERSION_NUM >= 180000
    return ExecCheckIndexConstraints(result, slot, estate, &conflict, nullptr, NIL);
#else
    return ExecCheckIndexConstraints(result, slot, estate, &conflict, NIL);
#endif
}

// A dotted name ('schema.fn') as a list of String nodes; 16 added the soft
// error context (none here: a bad name raises).
inline List* qualified_name_list(const char* name) {
#if PG_VERSION_NUM >= 160000
    return stringToQualifiedNameList(name, nullptr);
#else
    return stringToQualifiedNameList(name);
#endif
}

// Whether `role` may execute function `fn`; 16 made the per-catalog ACL
// checks one object_aclcheck().
inline bool may_execute(Oid fn, Oid role) {
#if PG_VERSION_NUM >= 160000
    return object_aclcheck(ProcedureRelationId, fn, role, ACL_EXECUTE) == ACLCHECK_OK;
#else
    return pg_proc_aclcheck(fn, role, ACL_EXECUTE) == ACLCHECK_OK;
#endif
}

}  // namespace outbox::pg::compat
