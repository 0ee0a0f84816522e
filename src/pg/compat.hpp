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
#include "catalog/dependency.h"
#include "executor/executor.h"
#include "nodes/bitmapset.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/wait_event.h"
}

namespace outbox::pg::compat {

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

}  // namespace outbox::pg::compat
