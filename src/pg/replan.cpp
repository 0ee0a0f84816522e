// A queue goes from empty to a million rows in seconds; autovacuum's ANALYZE
// looks at it once a minute at best. Until a table is analyzed (or altered),
// PostgreSQL keeps the plans it cached for it, so a plan chosen while
// outbox.deliveries held a few pages (a hash join over a sequential scan, or
// the whole table as the outer side of a nested loop) keeps running against
// the backlog: record() was measured at 2.2 s per batch with 70,000 pending
// instead of 0.3 ms, which caps a drain at a few hundred events a second.
//
// The planner reads a table's current size in pages whenever it plans, so
// re-planning is enough. The worker watches the two big tables and, when one
// has doubled since the last time, sends the relcache invalidation an
// ANALYZE would send (at commit): every session that uses the table, worker
// and external relays alike, re-plans it at its next use. A doubling rule
// means a table growing to N pages causes about log2(N) re-plans.

#include "pg/replan.hpp"

extern "C" {
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

namespace outbox::pg {

namespace {

// A plan made while a table was empty (or looked empty: analyzed right
// after a TRUNCATE) takes it for one row: record() then ran the result
// array once per row of outbox.deliveries instead of looking each result up
// by primary key, O(rows x results) until the table had 8 pages. So the
// first page counts too: re-planning a few more times costs little.
constexpr BlockNumber kMinPages = 1;

struct Watched {
    const char* name;
    Oid relid = InvalidOid;
    BlockNumber planned_pages = 0;  // size when its plans were last renewed
};

Watched watched[] = {{"events"}, {"deliveries"}};

void check(Watched& table, Oid schema) {
    Oid relid = get_relname_relid(table.name, schema);
    if (!OidIsValid(relid)) return;
    Relation rel = table_open(relid, AccessShareLock);
    BlockNumber pages = RelationGetNumberOfBlocks(rel);
    table_close(rel, AccessShareLock);
    if (relid != table.relid) {
        // First look (or the extension was re-created): plans are made from now.
        table.relid = relid;
        table.planned_pages = pages;
        return;
    }
    if (pages >= kMinPages && pages >= 2 * table.planned_pages) {
        CacheInvalidateRelcacheByRelid(relid);
        table.planned_pages = pages;
    } else if (pages < table.planned_pages) {
        table.planned_pages = pages;  // truncated (VACUUM re-plans by itself)
    }
}

}  // namespace

void replan_if_grown() {
    Oid schema = get_namespace_oid("outbox", true);
    if (!OidIsValid(schema)) return;
    for (Watched& table : watched) check(table, schema);
}

}  // namespace outbox::pg
