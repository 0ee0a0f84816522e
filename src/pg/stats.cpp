// Per-endpoint counters in shared memory, and the SQL functions that read
// and reset them (stats.hpp says what is counted).
//
// A table of slots, one per endpoint that has had attempts
// (endpoint_slots.hpp), under one LWLock: a worker touches it once per
// finished attempt.
//
// Plain PostgreSQL code, no C++ objects: errors simply propagate.
#include "pg/stats.hpp"

#include "pg/endpoint_slots.hpp"
#include "pg/gucs.hpp"

#include <cstring>

extern "C" {
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "access/htup_details.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

namespace outbox::pg {

namespace {

constexpr int kSlots = 512;  // endpoints of all databases
constexpr const char* kTranche = "outbox stats";

struct Slot {
    Oid database;
    int32 endpoint_id;
    bool used;
    TimestampTz last_used;
    int32 in_flight[kMaxWorkers];
    core::EndpointCounters counters;
};

// When a database's counters were last reset (outbox.stats_reset()).
struct Reset {
    Oid database;
    TimestampTz at;
};
constexpr int kResets = 64;

struct SharedStats {
    LWLock* lock;
    TimestampTz started_at;  // the counters of a database never reset count from here
    Reset resets[kResets];   // the oldest is forgotten first (its database counts from started_at then)
    Slot slots[kSlots];
};

SharedStats* stats = nullptr;

Datum interval_of_us(int64 us) {
    Interval* interval = static_cast<Interval*>(palloc0(sizeof(Interval)));
    interval->time = us;
    return IntervalPGetDatum(interval);
}

}  // namespace

Size stats_shmem_size() { return MAXALIGN(sizeof(SharedStats)); }

void stats_request_lock() { RequestNamedLWLockTranche(kTranche, 1); }

void stats_shmem_init() {
    if (attach_shared(&stats, "outbox stats", kTranche)) stats->started_at = GetCurrentTimestamp();
}

namespace {

// Under the lock.
TimestampTz reset_time(Oid database) {
    for (const Reset& r : stats->resets)
        if (r.database == database) return r.at;
    return stats->started_at;
}

void note_reset(Oid database, TimestampTz at) {
    Reset* slot = &stats->resets[0];
    for (Reset& r : stats->resets) {
        if (r.database == database) {
            slot = &r;
            break;
        }
        if (r.at < slot->at) slot = &r;
    }
    *slot = Reset{database, at};
}

}  // namespace

core::HealthChange count_endpoint_attempt(int32 endpoint_id, bool success, TimestampTz now, int64 latency_us,
                                          int32* consecutive, TimestampTz* since) {
    if (stats == nullptr) return core::HealthChange::None;
    LWLockAcquire(stats->lock, LW_EXCLUSIVE);
    Slot* slot = endpoint_slot(stats->slots, endpoint_id, now, true);
    core::HealthChange change = core::count_attempt(slot->counters, success, now, latency_us);
    *consecutive = static_cast<int32>(slot->counters.consecutive_failures);
    *since = slot->counters.first_failure_us;
    LWLockRelease(stats->lock);
    return change;
}

void publish_in_flight(int slot_number, int32 endpoint_id, int32 n) {
    if (stats == nullptr) return;
    LWLockAcquire(stats->lock, LW_EXCLUSIVE);
    Slot* slot = endpoint_slot(stats->slots, endpoint_id, GetCurrentTimestamp(), n > 0);
    if (slot != nullptr) slot->in_flight[slot_number] = n;
    LWLockRelease(stats->lock);
}

void stats_forget_worker(int slot_number) {
    if (stats == nullptr) return;
    LWLockAcquire(stats->lock, LW_EXCLUSIVE);
    for (Slot& slot : stats->slots)
        if (slot.used && slot.database == MyDatabaseId) slot.in_flight[slot_number] = 0;
    LWLockRelease(stats->lock);
}

void stats_forget_database(Oid database) {
    if (stats == nullptr) return;
    LWLockAcquire(stats->lock, LW_EXCLUSIVE);
    forget_database_slots(stats->slots, database);
    for (Reset& r : stats->resets)
        if (r.database == database) r = Reset{InvalidOid, 0};
    LWLockRelease(stats->lock);
}

void seed_endpoint_failing(int32 endpoint_id) {
    if (stats == nullptr) return;
    LWLockAcquire(stats->lock, LW_EXCLUSIVE);
    Slot* slot = endpoint_slot(stats->slots, endpoint_id, GetCurrentTimestamp(), true);
    slot->counters.failing = true;
    LWLockRelease(stats->lock);
}

}  // namespace outbox::pg

extern "C" {

PG_FUNCTION_INFO_V1(outbox_endpoint_counters);
Datum outbox_endpoint_counters(PG_FUNCTION_ARGS) {
    using namespace outbox::pg;
    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "outbox.endpoint_counters() must return a composite type");
    desc = BlessTupleDesc(desc);
    Datum values[9] = {Int64GetDatum(0), Int64GetDatum(0), 0, 0, Int32GetDatum(0), Int32GetDatum(0), 0, 0, 0};
    bool nulls[9] = {false, false, true, true, false, false, true, true, true};
    if (stats != nullptr) {
        int32 endpoint_id = PG_GETARG_INT32(0);
        TimestampTz now = GetCurrentTimestamp();
        LWLockAcquire(stats->lock, LW_SHARED);
        values[8] = TimestampTzGetDatum(reset_time(MyDatabaseId));
        nulls[8] = false;
        if (const Slot* slot = endpoint_slot(stats->slots, endpoint_id, now, false)) {
            const outbox::core::EndpointCounters& c = slot->counters;
            values[0] = Int64GetDatum(static_cast<int64>(c.delivered));
            values[1] = Int64GetDatum(static_cast<int64>(c.failed_attempts));
            if (c.last_success_us != 0) {
                values[2] = TimestampTzGetDatum(c.last_success_us);
                nulls[2] = false;
            }
            if (c.last_failure_us != 0) {
                values[3] = TimestampTzGetDatum(c.last_failure_us);
                nulls[3] = false;
            }
            values[4] = Int32GetDatum(static_cast<int32>(c.consecutive_failures));
            int32 in_flight = 0;
            for (int32 n : slot->in_flight) in_flight += n;
            values[5] = Int32GetDatum(in_flight);
            int64 now_s = now / USECS_PER_SEC;
            if (auto p50 = outbox::core::latency_quantile(c.latency, now_s, 0.50)) {
                values[6] = interval_of_us(*p50);
                nulls[6] = false;
            }
            if (auto p99 = outbox::core::latency_quantile(c.latency, now_s, 0.99)) {
                values[7] = interval_of_us(*p99);
                nulls[7] = false;
            }
        }
        LWLockRelease(stats->lock);
    }
    return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

PG_FUNCTION_INFO_V1(outbox_stats_reset);
Datum outbox_stats_reset(PG_FUNCTION_ARGS) {
    using namespace outbox::pg;
    if (stats == nullptr)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("outbox statistics are kept only when the library is preloaded"),
                        errhint("Add outbox to shared_preload_libraries and restart the server.")));
    LWLockAcquire(stats->lock, LW_EXCLUSIVE);
    for (Slot& slot : stats->slots)
        if (slot.used && slot.database == MyDatabaseId) outbox::core::reset_counters(slot.counters);
    note_reset(MyDatabaseId, GetCurrentTimestamp());
    LWLockRelease(stats->lock);
    PG_RETURN_VOID();
}

}
