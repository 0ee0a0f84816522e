// The settings of a worker's session. Each says why it differs from what a
// client session gets.
#include "pg/worker_session.hpp"

extern "C" {
#include "postgres.h"

#include "utils/guc.h"
}

namespace outbox::pg {

void set_up_worker_session() {
    SetConfigOption("application_name", "outbox worker", PGC_USERSET, PGC_S_SESSION);
    // The worker's queries are short and run thousands of times; JIT
    // compilation (triggered by cost estimates on large backlogs) would cost
    // more than any of them.
    SetConfigOption("jit", "off", PGC_SUSET, PGC_S_SESSION);
    // The worker's statements (and those inside outbox.dispatch, claim and
    // record) run with new parameters thousands of times a second. Custom
    // plans re-plan each call, most of the cost of a small batch (about
    // 0.2 ms of 0.3 per claim); generic plans are made once, and again when
    // the tables grow (replan.cpp). They were written not to depend on the
    // values.
    SetConfigOption("plan_cache_mode", "force_generic_plan", PGC_USERSET, PGC_S_SESSION);
    // Claims (FOR UPDATE SKIP LOCKED), pruning and truncation rely on each
    // statement seeing what committed before it, whatever the server's or
    // database's default_transaction_isolation.
    SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_SESSION);
    // The worker's statements (queue_*.cpp) name every table and function
    // with its schema and enter no function with a SET clause: nothing a
    // user creates elsewhere may take the place of what they call.
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION);
    // Plans made while a queue table is empty (or looks empty: after a
    // TRUNCATE and an ANALYZE) take sequential scans for lookups by key,
    // and keep them until the table has grown enough to be re-planned
    // (replan.cpp): 100 events dispatched then read 400 pages of events
    // instead of 100 index entries. Every lookup of the worker's statements
    // has an index; a bitmap scan of a range that dispatch must read in
    // order (queue_dispatch.cpp) would read all of it.
    SetConfigOption("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION);
    SetConfigOption("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION);
}

}  // namespace outbox::pg
