#include "pg/launcher_workers.hpp"

extern "C" {
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
}

namespace outbox::pg {

namespace {

constexpr long kMinRestartDelayMs = 1000;
constexpr long kMaxRestartDelayMs = 60000;
constexpr long kHealthyRunMs = 60000;  // a worker that ran this long resets its backoff
constexpr long kNoSlotRetryMs = 1000;  // a worker slot may free up: try again soon

bool start_worker(WorkerProcess* p, const WorkerStart& start, int slot) {
    BackgroundWorker worker;
    memset(&worker, 0, sizeof(worker));
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = BGW_NEVER_RESTART;  // the launcher restarts it
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "outbox");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "outbox_worker_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "outbox worker %d in %s", slot, NameStr(start.name));
    snprintf(worker.bgw_type, BGW_MAXLEN, "outbox worker");
    worker.bgw_main_arg = Int32GetDatum(slot);
    memcpy(worker.bgw_extra, &start, sizeof(start));
    worker.bgw_notify_pid = MyProcPid;  // its start and exit set the launcher's latch

    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    BackgroundWorkerHandle* handle = nullptr;
    bool ok = RegisterDynamicBackgroundWorker(&worker, &handle);
    MemoryContextSwitchTo(old);
    if (!ok) {
        if (!p->no_slot_logged)
            ereport(WARNING,
                    (errmsg("outbox: could not start worker %d of database \"%s\": no free background worker slot",
                            slot, NameStr(start.name)),
                     errdetail("max_worker_processes is %d; background workers of other extensions and "
                               "parallel queries take from it too.",
                               max_worker_processes),
                     errhint("Raise max_worker_processes (a restart): outbox needs one for its launcher and "
                             "one per worker.")));
        p->no_slot_logged = true;
        return false;
    }
    p->no_slot_logged = false;
    p->handle = handle;
    p->started_at = GetCurrentTimestamp();
    p->stopping = false;
    return true;
}

}  // namespace

bool worker_running(const DatabaseWorkers* w, int slot) { return w->procs[slot].handle != nullptr; }

bool worker_lacks_slot(const DatabaseWorkers* w, int slot) {
    return w->procs[slot].handle == nullptr && w->procs[slot].no_slot_logged;
}

int reap_workers(DatabaseWorkers* w, const char* database, TimestampTz now) {
    int running = 0;
    for (int i = 0; i < kMaxWorkers; i++) {
        WorkerProcess& p = w->procs[i];
        if (p.handle == nullptr) continue;
        pid_t pid;
        if (GetBackgroundWorkerPid(p.handle, &pid) != BGWH_STOPPED) {
            running++;
            continue;
        }
        pfree(p.handle);
        p.handle = nullptr;
        if (p.stopping) {
            p.stopping = false;
            p.restart_at = now;
            continue;
        }
        bool healthy = TimestampDifferenceExceeds(p.started_at, now, kHealthyRunMs);
        p.restart_delay_ms = healthy ? kMinRestartDelayMs
                                     : Min(Max(p.restart_delay_ms * 2, kMinRestartDelayMs), kMaxRestartDelayMs);
        p.restart_at = TimestampTzPlusMilliseconds(now, p.restart_delay_ms);
        ereport(LOG, (errmsg("outbox: worker %d exited; restarting it in %ld ms (database \"%s\")", i,
                             p.restart_delay_ms, database)));
    }
    return running;
}

long keep_workers(DatabaseWorkers* w, const WorkerStart& start, int count, TimestampTz now, long max_wait_ms) {
    long wait_ms = max_wait_ms;
    for (int i = 0; i < kMaxWorkers; i++) {
        WorkerProcess& p = w->procs[i];
        if (i >= count) {
            if (p.handle != nullptr && !p.stopping) {
                TerminateBackgroundWorker(p.handle);
                p.stopping = true;
            }
            continue;
        }
        if (p.handle != nullptr) continue;
        if (now >= p.restart_at && !start_worker(&p, start, i))
            p.restart_at = TimestampTzPlusMilliseconds(now, kNoSlotRetryMs);
        if (p.handle == nullptr) wait_ms = Min(wait_ms, Max((long)((p.restart_at - now) / 1000), 10L));
    }
    return wait_ms;
}

void stop_workers(DatabaseWorkers* w) {
    for (WorkerProcess& p : w->procs) {
        if (p.handle == nullptr || p.stopping) continue;
        TerminateBackgroundWorker(p.handle);
        p.stopping = true;
    }
}

}  // namespace outbox::pg
