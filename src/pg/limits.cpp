// Per-endpoint limits in shared memory (limits.hpp): a table of slots, one
// per limited endpoint (endpoint_slots.hpp), under one LWLock; only
// requests to endpoints with a limit come here.
//
// Plain PostgreSQL code, no C++ objects: errors simply propagate.
#include "pg/limits.hpp"

#include "core/rate.hpp"
#include "pg/endpoint_slots.hpp"
#include "pg/gucs.hpp"

#include <cstring>

extern "C" {
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"
}

namespace outbox::pg {

namespace {

constexpr int kSlots = 512;  // limited endpoints of all databases
constexpr const char* kTranche = "outbox limits";

struct Slot {
    Oid database;
    int32 endpoint_id;
    bool used;
    TimestampTz last_used;
    core::RateState rate;
    int32 active[kMaxWorkers];  // requests in flight, per worker
};

struct SharedLimits {
    LWLock* lock;
    Slot slots[kSlots];
};

SharedLimits* limits = nullptr;

}  // namespace

Size limits_shmem_size() { return MAXALIGN(sizeof(SharedLimits)); }

void limits_request_lock() { RequestNamedLWLockTranche(kTranche, 1); }

void limits_shmem_init() { attach_shared(&limits, "outbox limits", kTranche); }

bool limits_try_start(int worker, int32 endpoint_id, double rate, int32 max_in_flight, int64* retry_in_us) {
    *retry_in_us = 0;
    if (limits == nullptr || (rate <= 0 && max_in_flight <= 0)) return true;
    TimestampTz now = GetCurrentTimestamp();
    LWLockAcquire(limits->lock, LW_EXCLUSIVE);
    Slot* slot = endpoint_slot(limits->slots, endpoint_id, now, true);
    bool ok = true;
    if (max_in_flight > 0) {
        int32 active = 0;
        for (int32 n : slot->active) active += n;
        ok = active < max_in_flight;
    }
    if (ok && rate > 0) ok = core::rate_admit(slot->rate, now, rate, retry_in_us);
    if (ok) slot->active[worker]++;
    LWLockRelease(limits->lock);
    return ok;
}

void limits_finish(int worker, int32 endpoint_id) {
    if (limits == nullptr) return;
    LWLockAcquire(limits->lock, LW_EXCLUSIVE);
    for (Slot& s : limits->slots)
        if (s.used && s.database == MyDatabaseId && s.endpoint_id == endpoint_id && s.active[worker] > 0)
            s.active[worker]--;
    LWLockRelease(limits->lock);
}

void limits_forget_worker(int worker) {
    if (limits == nullptr) return;
    LWLockAcquire(limits->lock, LW_EXCLUSIVE);
    for (Slot& s : limits->slots)
        if (s.database == MyDatabaseId) s.active[worker] = 0;
    LWLockRelease(limits->lock);
}

void limits_forget_database(Oid database) {
    if (limits == nullptr) return;
    LWLockAcquire(limits->lock, LW_EXCLUSIVE);
    forget_database_slots(limits->slots, database);
    LWLockRelease(limits->lock);
}

}  // namespace outbox::pg
