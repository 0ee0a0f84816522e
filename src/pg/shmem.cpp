#include "pg/shmem.hpp"

#include "pg/gucs.hpp"
#include "pg/limits.hpp"
#include "pg/stats.hpp"

extern "C" {
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"
}

namespace outbox::pg {

namespace {

struct SharedState {
    slock_t mutex;
    Latch* worker_latch[kMaxWorkers];
    bool missing_database_logged;
    EndpointPause pauses[kMaxEndpointPauses];  // until 0: free
};

SharedState* shared = nullptr;
shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

void request_shmem() {
    if (prev_shmem_request_hook) prev_shmem_request_hook();
    RequestAddinShmemSpace(MAXALIGN(sizeof(SharedState)) + stats_shmem_size() + limits_shmem_size());
    stats_request_lock();
    limits_request_lock();
}

void startup_shmem() {
    if (prev_shmem_startup_hook) prev_shmem_startup_hook();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found = false;
    shared = static_cast<SharedState*>(ShmemInitStruct("outbox", sizeof(SharedState), &found));
    if (!found) {
        memset(shared, 0, sizeof(SharedState));
        SpinLockInit(&shared->mutex);
    }
    stats_shmem_init();
    limits_shmem_init();
    LWLockRelease(AddinShmemInitLock);
}

}  // namespace

void install_shmem_hooks() {
    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = request_shmem;
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = startup_shmem;
}

void publish_worker_latch(int slot, Latch* latch) {
    SpinLockAcquire(&shared->mutex);
    shared->worker_latch[slot] = latch;
    SpinLockRelease(&shared->mutex);
}

void withdraw_worker_latch(int slot) { publish_worker_latch(slot, nullptr); }

// Reading the pointers without the spinlock is fine: a latch lives in shared
// memory for the postmaster's lifetime, so at worst we set the latch of a
// process that has just exited, which is harmless. Setting a latch that is
// set already, or whose worker is not sleeping, costs no system call.
//
// Every commit wakes the same worker, the first running one. Commits that
// come while it is in a transaction leave its latch set, and its next
// transaction takes all their events at once: at a moderate rate that is
// what batches them. Spread over the workers, each commit cost a transaction
// of its own, and concurrent dispatches found each other's lock (measured at
// 1,000 events/s: 0.9 ms of worker CPU per event). The woken worker wakes the
// others when there is more than it can take (wake_other_workers).
void wake_a_worker() {
    if (shared == nullptr) return;
    for (Latch* latch : shared->worker_latch) {
        if (latch != nullptr) {
            SetLatch(latch);
            return;
        }
    }
}

void wake_other_workers(int slot) {
    if (shared == nullptr) return;
    for (int i = 0; i < kMaxWorkers; i++) {
        Latch* latch = shared->worker_latch[i];
        if (latch != nullptr && i != slot) SetLatch(latch);
    }
}

void share_endpoint_pause(int32 endpoint_id, TimestampTz until) {
    if (shared == nullptr) return;
    TimestampTz now = GetCurrentTimestamp();
    SpinLockAcquire(&shared->mutex);
    // Its own entry while the pause lasts; else the entry ending first, which
    // is a free (0) or ended one if there is any.
    EndpointPause* slot = nullptr;
    for (EndpointPause& p : shared->pauses)
        if (p.endpoint_id == endpoint_id && p.until > now) slot = &p;
    if (slot == nullptr) {
        slot = &shared->pauses[0];
        for (EndpointPause& p : shared->pauses)
            if (p.until < slot->until) slot = &p;
        slot->until = 0;
    }
    slot->endpoint_id = endpoint_id;
    slot->until = Max(slot->until, until);
    SpinLockRelease(&shared->mutex);
}

int shared_endpoint_pauses(EndpointPause* out) {
    if (shared == nullptr) return 0;
    TimestampTz now = GetCurrentTimestamp();
    int n = 0;
    SpinLockAcquire(&shared->mutex);
    for (const EndpointPause& p : shared->pauses)
        if (p.until > now) out[n++] = p;
    SpinLockRelease(&shared->mutex);
    return n;
}

bool note_missing_database_once() {
    SpinLockAcquire(&shared->mutex);
    bool first = !shared->missing_database_logged;
    shared->missing_database_logged = true;
    SpinLockRelease(&shared->mutex);
    return first;
}

void clear_missing_database_note() {
    SpinLockAcquire(&shared->mutex);
    shared->missing_database_logged = false;
    SpinLockRelease(&shared->mutex);
}

}  // namespace outbox::pg
