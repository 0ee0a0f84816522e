// The launcher: a background worker bound to no database. It waits until
// outbox.database exists, then starts outbox.workers delivery workers there,
// and restarts any that exit, with backoff. This is what turns "the database
// does not exist (yet)" into one log line instead of a crash loop.
//
// Plain PostgreSQL code, no C++ objects: an ERROR here simply ends the
// launcher, and the postmaster starts it again.
#include "pg/worker.hpp"

#include "pg/gucs.hpp"
#include "pg/shmem.hpp"
#include "pg/wait_events.hpp"

extern "C" {
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace outbox::pg {

namespace {

constexpr long kMissingDatabaseRecheckMs = 1000;  // a pg_database scan: cheap
constexpr long kSuperviseIntervalMs = 10000;
constexpr long kMinRestartDelayMs = 1000;
constexpr long kMaxRestartDelayMs = 60000;
constexpr long kHealthyRunMs = 60000;  // a worker that ran this long resets its backoff

struct Slot {
    BackgroundWorkerHandle* handle;
    TimestampTz started_at;
    TimestampTz restart_at;
    long restart_delay_ms;
};

Slot slots[kMaxWorkers];

bool database_exists(const char* name) {
    bool found = false;
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
    HeapTuple tuple;
    while ((tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr) {
        Form_pg_database db = (Form_pg_database)GETSTRUCT(tuple);
        if (strcmp(NameStr(db->datname), name) == 0) {
            found = true;
            break;
        }
    }
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    PopActiveSnapshot();
    CommitTransactionCommand();
    return found;
}

bool start_worker(int slot) {
    BackgroundWorker worker;
    memset(&worker, 0, sizeof(worker));
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = BGW_NEVER_RESTART;  // the launcher restarts it
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "outbox");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "outbox_worker_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "outbox worker %d", slot);
    snprintf(worker.bgw_type, BGW_MAXLEN, "outbox worker");
    worker.bgw_main_arg = Int32GetDatum(slot);
    worker.bgw_notify_pid = MyProcPid;

    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    BackgroundWorkerHandle* handle = nullptr;
    bool ok = RegisterDynamicBackgroundWorker(&worker, &handle);
    MemoryContextSwitchTo(old);
    if (!ok) {
        ereport(WARNING,
                (errmsg("outbox: could not start outbox worker %d: no free background worker slot", slot),
                 errhint("Raise max_worker_processes: outbox needs outbox.workers + 1 of them.")));
        return false;
    }
    slots[slot].handle = handle;
    slots[slot].started_at = GetCurrentTimestamp();
    return true;
}

bool is_running(int slot) {
    if (slots[slot].handle == nullptr) return false;
    pid_t pid;
    return GetBackgroundWorkerPid(slots[slot].handle, &pid) != BGWH_STOPPED;
}

// Starts the workers that are not running and whose backoff has passed.
// Returns how long to wait before looking again.
long supervise_workers() {
    long wait_ms = kSuperviseIntervalMs;
    TimestampTz now = GetCurrentTimestamp();
    for (int i = 0; i < guc_workers; i++) {
        Slot& s = slots[i];
        if (is_running(i)) continue;
        if (s.handle != nullptr) {
            // It exited: restart after a delay that grows while it keeps
            // exiting soon after starting.
            pfree(s.handle);
            s.handle = nullptr;
            bool healthy = TimestampDifferenceExceeds(s.started_at, now, kHealthyRunMs);
            s.restart_delay_ms = healthy ? kMinRestartDelayMs
                                         : Min(Max(s.restart_delay_ms * 2, kMinRestartDelayMs), kMaxRestartDelayMs);
            s.restart_at = TimestampTzPlusMilliseconds(now, s.restart_delay_ms);
            ereport(LOG, (errmsg("outbox: worker %d exited; restarting it in %ld ms", i, s.restart_delay_ms)));
        }
        if (now >= s.restart_at) {
            if (!start_worker(i)) s.restart_at = TimestampTzPlusMilliseconds(now, kMaxRestartDelayMs);
        }
        if (s.handle == nullptr) {
            long until = (long)((s.restart_at - now) / 1000);
            wait_ms = Min(wait_ms, Max(until, 10L));
        }
    }
    return wait_ms;
}

}  // namespace

}  // namespace outbox::pg

extern "C" PGDLLEXPORT void outbox_launcher_main(Datum) {
    using namespace outbox::pg;
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);  // shared catalogs only
    pgstat_report_appname("outbox launcher");

    bool reported_missing = false;
    while (!ShutdownRequestPending) {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        long wait_ms;
        if (!database_exists(guc_database)) {
            if (note_missing_database_once())
                ereport(WARNING,
                        (errmsg("outbox: database \"%s\" named by outbox.database does not exist; no events "
                                "are delivered until it does",
                                guc_database),
                         errhint("Create the database and run CREATE EXTENSION outbox in it, or set "
                                 "outbox.database and restart the server.")));
            reported_missing = true;
            wait_ms = kMissingDatabaseRecheckMs;
        } else {
            if (reported_missing) {
                ereport(LOG, (errmsg("outbox: database \"%s\" exists now; starting workers", guc_database)));
                clear_missing_database_note();
                reported_missing = false;
            }
            wait_ms = supervise_workers();
        }
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, wait_ms, wait_event_launcher_main());
        ResetLatch(MyLatch);
    }
    proc_exit(0);
}
