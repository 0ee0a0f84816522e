// The launcher's mailbox in shared memory (launcher_requests.hpp), under
// one spinlock: a handful of flags and small arrays, touched by DDL and by
// the launcher's rounds only, never on the path of an enqueue.
#include "pg/launcher_requests.hpp"

#include "pg/wait_events.hpp"

extern "C" {
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"
}

namespace outbox::pg {

namespace {

struct Hold {
    Oid database;  // InvalidOid: free
    int pid;       // the holder
    Latch* latch;  // set when the launcher acknowledges
    bool stopped;  // acknowledged: none of the database's workers runs
};

struct Mailbox {
    slock_t mutex;
    Latch* launcher_latch;
    LauncherRequests requests;
    Hold holds[kMaxHolds];
    uint64 missing_logged;  // by position in outbox.database
};

Mailbox* mailbox = nullptr;
bool holding = false;  // this process has a hold to release

}  // namespace

Size launcher_requests_shmem_size() { return MAXALIGN(sizeof(Mailbox)); }

void launcher_requests_shmem_init() {
    bool found = false;
    mailbox = static_cast<Mailbox*>(ShmemInitStruct("outbox launcher requests", sizeof(Mailbox), &found));
    if (!found) {
        memset(static_cast<void*>(mailbox), 0, sizeof(Mailbox));
        SpinLockInit(&mailbox->mutex);
    }
}

void launcher_attach() {
    SpinLockAcquire(&mailbox->mutex);
    mailbox->launcher_latch = MyLatch;
    SpinLockRelease(&mailbox->mutex);
}

void launcher_detach() {
    SpinLockAcquire(&mailbox->mutex);
    mailbox->launcher_latch = nullptr;
    SpinLockRelease(&mailbox->mutex);
}

void take_launcher_requests(LauncherRequests* out) {
    SpinLockAcquire(&mailbox->mutex);
    *out = mailbox->requests;
    memset(&mailbox->requests, 0, sizeof(mailbox->requests));
    SpinLockRelease(&mailbox->mutex);
}

int held_databases(Oid* out) {
    int pids[kMaxHolds];
    int n = 0;
    SpinLockAcquire(&mailbox->mutex);
    for (const Hold& h : mailbox->holds) {
        if (h.database == InvalidOid) continue;
        out[n] = h.database;
        pids[n++] = h.pid;
    }
    SpinLockRelease(&mailbox->mutex);
    // A holder that ended by FATAL never reached the end of its transaction.
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (BackendPidGetProc(pids[i]) != nullptr) {
            out[kept++] = out[i];
            continue;
        }
        SpinLockAcquire(&mailbox->mutex);
        for (Hold& h : mailbox->holds)
            if (h.pid == pids[i]) h.database = InvalidOid;
        SpinLockRelease(&mailbox->mutex);
    }
    return kept;
}

void acknowledge_holds(Oid database) {
    Latch* latches[kMaxHolds];
    int n = 0;
    SpinLockAcquire(&mailbox->mutex);
    for (Hold& h : mailbox->holds) {
        if (h.database != database || h.stopped) continue;
        h.stopped = true;
        latches[n++] = h.latch;
    }
    SpinLockRelease(&mailbox->mutex);
    for (int i = 0; i < n; i++) SetLatch(latches[i]);
}

bool note_missing_database_once(int position) {
    uint64 bit = UINT64CONST(1) << (position % 64);
    SpinLockAcquire(&mailbox->mutex);
    bool first = (mailbox->missing_logged & bit) == 0;
    mailbox->missing_logged |= bit;
    SpinLockRelease(&mailbox->mutex);
    return first;
}

bool missing_database_noted(int position) {
    SpinLockAcquire(&mailbox->mutex);
    bool noted = (mailbox->missing_logged & (UINT64CONST(1) << (position % 64))) != 0;
    SpinLockRelease(&mailbox->mutex);
    return noted;
}

void clear_missing_database_note(int position) {
    SpinLockAcquire(&mailbox->mutex);
    mailbox->missing_logged &= ~(UINT64CONST(1) << (position % 64));
    SpinLockRelease(&mailbox->mutex);
}

void wake_launcher() {
    if (mailbox == nullptr) return;
    SpinLockAcquire(&mailbox->mutex);
    Latch* latch = mailbox->launcher_latch;
    SpinLockRelease(&mailbox->mutex);
    if (latch != nullptr) SetLatch(latch);
}

void request_rescan() {
    if (mailbox == nullptr) return;
    SpinLockAcquire(&mailbox->mutex);
    mailbox->requests.rescan = true;
    SpinLockRelease(&mailbox->mutex);
    wake_launcher();
}

void request_recheck(Oid database) {
    if (mailbox == nullptr) return;
    SpinLockAcquire(&mailbox->mutex);
    LauncherRequests& r = mailbox->requests;
    bool listed = false;
    for (int i = 0; i < r.n_recheck; i++) listed = listed || r.recheck[i] == database;
    if (!listed && r.n_recheck < kMaxRechecks) r.recheck[r.n_recheck++] = database;
    else if (!listed) r.recheck_all = true;
    SpinLockRelease(&mailbox->mutex);
    wake_launcher();
}

void request_recheck_all() {
    if (mailbox == nullptr) return;
    SpinLockAcquire(&mailbox->mutex);
    mailbox->requests.recheck_all = true;
    SpinLockRelease(&mailbox->mutex);
    wake_launcher();
}

bool hold_database(Oid database, int timeout_ms) {
    if (mailbox == nullptr) return false;
    Hold* hold = nullptr;
    SpinLockAcquire(&mailbox->mutex);
    bool launcher_runs = mailbox->launcher_latch != nullptr;
    for (Hold& h : mailbox->holds) {
        if (h.database != InvalidOid) continue;
        h = Hold{database, MyProcPid, MyLatch, false};
        hold = &h;
        break;
    }
    SpinLockRelease(&mailbox->mutex);
    if (hold == nullptr) return false;
    holding = true;
    // Without a launcher no worker runs (it stops its workers when it exits).
    if (!launcher_runs) return false;
    wake_launcher();
    TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
    for (;;) {
        SpinLockAcquire(&mailbox->mutex);
        bool stopped = hold->stopped;
        SpinLockRelease(&mailbox->mutex);
        if (stopped) return true;
        long left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
        if (left <= 0) return false;
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, Min(left, 100L),
                        wait_event_hold());
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
}

void release_holds() {
    if (!holding || mailbox == nullptr) return;
    holding = false;
    bool released = false;
    SpinLockAcquire(&mailbox->mutex);
    for (Hold& h : mailbox->holds) {
        if (h.database == InvalidOid || h.pid != MyProcPid) continue;
        h.database = InvalidOid;
        released = true;
    }
    if (released) mailbox->requests.rescan = true;  // the database may be gone, renamed or free again
    SpinLockRelease(&mailbox->mutex);
    if (released) wake_launcher();
}

}  // namespace outbox::pg
