// The library's entry: GUCs, the launcher, shared memory, and the commit
// callback that wakes the workers.
#include "pg/enqueue.hpp"
#include "pg/gucs.hpp"
#include "pg/shmem.hpp"
#include "pg/utility_hook.hpp"
#include "pg/worker.hpp"

extern "C" {
#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

namespace outbox::pg {

namespace {

// After COMMIT of a transaction that called enqueue(), set a worker's
// latch: the events are visible now, so it finds them on its next claim.
// Cheaper than NOTIFY, which serializes commits on a lock; and one worker
// of this database, not all, so that a commit costs one wake-up whatever
// outbox.workers is. DDL the launcher must know of is told then too.
void on_transaction_end(XactEvent event, void*) {
    switch (event) {
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_PARALLEL_COMMIT:
            if (take_wake_on_commit()) wake_a_worker();
            utility_transaction_end(true);
            break;
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_ABORT:
        case XACT_EVENT_PREPARE:  // COMMIT PREPARED happens elsewhere: the poll finds it
            (void)take_wake_on_commit();
            utility_transaction_end(false);
            break;
        default:
            break;
    }
}

void register_launcher() {
    BackgroundWorker worker;
    memset(&worker, 0, sizeof(worker));
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = 5;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "outbox");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "outbox_launcher_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "outbox launcher");
    snprintf(worker.bgw_type, BGW_MAXLEN, "outbox launcher");
    RegisterBackgroundWorker(&worker);
}

}  // namespace

}  // namespace outbox::pg

void _PG_init(void) {
    using namespace outbox::pg;
    define_gucs();
    RegisterXactCallback(on_transaction_end, nullptr);
    // pg_upgrade runs both servers in binary-upgrade mode while it copies the
    // schema and the files: nothing may be delivered or written then.
    if (process_shared_preload_libraries_in_progress && !IsBinaryUpgrade) {
        install_shmem_hooks();
        install_utility_hook();
        register_launcher();
    }
}
