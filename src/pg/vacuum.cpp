#include "pg/vacuum.hpp"

#include "pg/gucs.hpp"
#include "pg/plan.hpp"
#include "pg/wait_events.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/vacuum.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "tcop/utility.h"
#include "utils/snapmgr.h"
}

namespace outbox::pg {

namespace {

constexpr const char* kDeadTuplesSql = R"sql(
SELECT n_dead_tup FROM pg_catalog.pg_stat_user_tables WHERE relid = 'outbox.deliveries'::pg_catalog.regclass
)sql";

Plan dead_tuples_plan{kDeadTuplesSql, 0, {}, nullptr};

// The last vacuum worker this process started (it runs one at a time).
BackgroundWorkerHandle* last_vacuum = nullptr;

}  // namespace

int64 deliveries_dead_tuples() {
    execute(dead_tuples_plan, nullptr, nullptr, SPI_OK_SELECT);
    bool isnull = true;
    Datum n = result_value(1, &isnull);
    return isnull ? 0 : DatumGetInt64(n);
}

bool start_deliveries_vacuum() {
    pid_t pid = 0;
    if (last_vacuum != nullptr && GetBackgroundWorkerPid(last_vacuum, &pid) != BGWH_STOPPED) return false;
    BackgroundWorker worker;
    memset(&worker, 0, sizeof(worker));
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "outbox");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "outbox_vacuum_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "outbox vacuum");
    snprintf(worker.bgw_type, BGW_MAXLEN, "outbox vacuum");
    worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
    worker.bgw_notify_pid = 0;
    BackgroundWorkerHandle* handle = nullptr;
    if (!RegisterDynamicBackgroundWorker(&worker, &handle)) return false;  // no free slot: autovacuum will do
    if (last_vacuum != nullptr) pfree(last_vacuum);
    last_vacuum = handle;
    return true;
}

void stop_deliveries_vacuum() {
    pid_t pid = 0;
    if (last_vacuum != nullptr && GetBackgroundWorkerPid(last_vacuum, &pid) != BGWH_STOPPED)
        TerminateBackgroundWorker(last_vacuum);
}

}  // namespace outbox::pg

// The vacuum worker: VACUUM (SKIP_LOCKED) outbox.deliveries, run as a
// top-level command is (it commits and starts transactions of its own), then
// exit. Errors end the process with the message in the log.
extern "C" PGDLLEXPORT void outbox_vacuum_main(Datum arg) {
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);
    pgstat_report_appname("outbox vacuum");
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    pgstat_report_activity(STATE_RUNNING, "VACUUM (SKIP_LOCKED) outbox.deliveries");
    VacuumStmt* stmt = makeNode(VacuumStmt);
    stmt->options = list_make1(makeDefElem(pstrdup("skip_locked"), nullptr, -1));
    stmt->rels = list_make1(
        makeVacuumRelation(makeRangeVar(pstrdup("outbox"), pstrdup("deliveries"), -1), InvalidOid, NIL));
    stmt->is_vacuumcmd = true;
    ExecVacuum(make_parsestate(nullptr), stmt, true);
    CommitTransactionCommand();
    pgstat_report_activity(STATE_IDLE, nullptr);
    pgstat_report_stat(true);
}
