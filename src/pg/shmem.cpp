#include "pg/shmem.hpp"

#include "pg/gucs.hpp"
#include "pg/launcher_requests.hpp"
#include "pg/limits.hpp"
#include "pg/stats.hpp"

extern "C" {
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "port/atomics.h"
#include "storage/spin.h"
#include "utils/timestamp.h"
}

namespace outbox::pg {

namespace {

struct DatabaseEntry {
    Oid database;  // InvalidOid: free
    ExtensionFound extension;
    bool settings_read;   // by its first worker: `own` holds
    bool settings_stale;  // to be read again
    DatabaseSettings own;
    Latch* worker_latch[kMaxWorkers];   // published while claiming: commits wake them
    Latch* process_latch[kMaxWorkers];  // every running worker's, paused or not: settings changes wake them
    pg_atomic_uint32 claim_asked[kMaxWorkers];  // set by wake_other_workers()
    pg_atomic_uint64 parked_at;  // TimestampTz of the last delivery parked behind its key's head (note_parked)
    EndpointPause pauses[kMaxEndpointPauses];  // until 0: free
};

struct SharedState {
    slock_t mutex;
    bool server_paused;
    int server_workers;
    int n_entries;
    DatabaseEntry entries[FLEXIBLE_ARRAY_MEMBER];
};

SharedState* shared = nullptr;

void init_atomics(DatabaseEntry& e) {
    for (pg_atomic_uint32& asked : e.claim_asked) pg_atomic_init_u32(&asked, 0);
    pg_atomic_init_u64(&e.parked_at, 0);
}
shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

// Every served database has at least one worker, each a background worker
// process: there cannot be more of them than max_worker_processes.
int entry_count() { return Max(max_worker_processes, 1); }

Size shared_state_size() {
    return add_size(offsetof(SharedState, entries), mul_size(sizeof(DatabaseEntry), entry_count()));
}

void request_shmem() {
    if (prev_shmem_request_hook) prev_shmem_request_hook();
    RequestAddinShmemSpace(add_size(MAXALIGN(shared_state_size()),
                                    stats_shmem_size() + limits_shmem_size() + launcher_requests_shmem_size()));
    stats_request_lock();
    limits_request_lock();
}

void startup_shmem() {
    if (prev_shmem_startup_hook) prev_shmem_startup_hook();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found = false;
    shared = static_cast<SharedState*>(ShmemInitStruct("outbox", shared_state_size(), &found));
    if (!found) {
        memset(static_cast<void*>(shared), 0, shared_state_size());
        SpinLockInit(&shared->mutex);
        shared->n_entries = entry_count();
        shared->server_paused = guc_paused;
        shared->server_workers = guc_workers;
        for (int i = 0; i < shared->n_entries; i++) init_atomics(shared->entries[i]);
    }
    stats_shmem_init();
    limits_shmem_init();
    launcher_requests_shmem_init();
    LWLockRelease(AddinShmemInitLock);
}

// The worker's own entry (attach_worker), and in a backend the entry its
// database was last found in: checked before each use, since the launcher
// may give the entry to another database.
int own_entry = kNoEntry;
int cached_entry = kNoEntry;

DatabaseEntry* own() { return own_entry == kNoEntry ? nullptr : &shared->entries[own_entry]; }

// The entry serving the caller's database, or nullptr. Read without the
// lock: an entry changing hands at worst sets a latch for nothing.
DatabaseEntry* entry_of_my_database() {
    if (shared == nullptr || MyDatabaseId == InvalidOid) return nullptr;
    if (own_entry != kNoEntry) return own();
    if (cached_entry != kNoEntry && shared->entries[cached_entry].database == MyDatabaseId)
        return &shared->entries[cached_entry];
    for (int i = 0; i < shared->n_entries; i++) {
        if (shared->entries[i].database == MyDatabaseId) {
            cached_entry = i;
            return &shared->entries[i];
        }
    }
    return nullptr;
}

}  // namespace

void install_shmem_hooks() {
    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = request_shmem;
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = startup_shmem;
}

int take_database_entry(Oid database) {
    int taken = kNoEntry;
    SpinLockAcquire(&shared->mutex);
    for (int i = 0; i < shared->n_entries && taken == kNoEntry; i++) {
        DatabaseEntry& e = shared->entries[i];
        if (e.database != InvalidOid) continue;
        memset(static_cast<void*>(&e), 0, sizeof(e));
        init_atomics(e);
        e.database = database;
        e.extension = ExtensionFound::Unknown;
        e.own = DatabaseSettings{};
        taken = i;
    }
    SpinLockRelease(&shared->mutex);
    return taken;
}

void free_database_entry(int entry) {
    SpinLockAcquire(&shared->mutex);
    shared->entries[entry].database = InvalidOid;
    SpinLockRelease(&shared->mutex);
}

void release_all_database_entries() {
    SpinLockAcquire(&shared->mutex);
    for (int i = 0; i < shared->n_entries; i++) shared->entries[i].database = InvalidOid;
    SpinLockRelease(&shared->mutex);
}

void set_server_settings(bool paused, int workers) {
    SpinLockAcquire(&shared->mutex);
    bool changed = shared->server_paused != paused;
    shared->server_paused = paused;
    shared->server_workers = workers;
    SpinLockRelease(&shared->mutex);
    if (!changed) return;
    for (int i = 0; i < shared->n_entries; i++)
        if (shared->entries[i].database != InvalidOid) wake_database_workers(i);
}

int database_workers(int entry) {
    const DatabaseEntry& e = shared->entries[entry];
    SpinLockAcquire(&shared->mutex);
    int workers = !e.settings_read ? 0 : e.own.workers > 0 ? e.own.workers : shared->server_workers;
    SpinLockRelease(&shared->mutex);
    return workers;
}

void ask_database_settings(int entry) {
    DatabaseEntry& e = shared->entries[entry];
    SpinLockAcquire(&shared->mutex);
    e.settings_stale = true;
    Latch* first = e.process_latch[0];
    SpinLockRelease(&shared->mutex);
    if (first != nullptr) SetLatch(first);
}

ExtensionFound database_extension(int entry) {
    SpinLockAcquire(&shared->mutex);
    ExtensionFound found = shared->entries[entry].extension;
    SpinLockRelease(&shared->mutex);
    return found;
}

void wake_database_workers(int entry) {
    for (Latch* latch : shared->entries[entry].process_latch)
        if (latch != nullptr) SetLatch(latch);
}

bool attach_worker(int entry) {
    if (shared == nullptr || entry < 0 || entry >= shared->n_entries) return false;
    SpinLockAcquire(&shared->mutex);
    bool ours = shared->entries[entry].database == MyDatabaseId;
    SpinLockRelease(&shared->mutex);
    if (ours) own_entry = entry;
    return ours;
}

bool database_paused() {
    DatabaseEntry* e = own();
    if (e == nullptr) return guc_paused;
    SpinLockAcquire(&shared->mutex);
    bool paused = e->own.paused >= 0 ? e->own.paused == 1 : shared->server_paused;
    SpinLockRelease(&shared->mutex);
    return paused;
}

bool database_settings_stale() {
    DatabaseEntry* e = own();
    return e != nullptr && (!e->settings_read || e->settings_stale);
}

void publish_database_settings(const DatabaseSettings& settings) {
    DatabaseEntry* e = own();
    if (e == nullptr) return;
    SpinLockAcquire(&shared->mutex);
    bool paused_changed = e->own.paused != settings.paused;
    bool workers_changed = !e->settings_read || e->own.workers != settings.workers;
    e->own = settings;
    e->settings_read = true;
    e->settings_stale = false;
    SpinLockRelease(&shared->mutex);
    if (paused_changed) wake_database_workers(own_entry);
    if (workers_changed) wake_launcher();
}

void report_extension(ExtensionFound found) {
    DatabaseEntry* e = own();
    if (e == nullptr) return;
    SpinLockAcquire(&shared->mutex);
    e->extension = found;
    SpinLockRelease(&shared->mutex);
    wake_launcher();
}

namespace {

using LatchSlots = Latch* [kMaxWorkers];

// Puts `latch` in the worker's slot of one of its entry's latch arrays; with
// nullptr, takes out only its own (the entry may have gone to another
// database meanwhile).
void store_latch(LatchSlots DatabaseEntry::*slots, int slot, Latch* latch) {
    DatabaseEntry* e = own();
    if (e == nullptr) return;
    SpinLockAcquire(&shared->mutex);
    Latch*& held = (e->*slots)[slot];
    if (latch != nullptr) held = latch;
    else if (held == MyLatch) held = nullptr;
    SpinLockRelease(&shared->mutex);
}

}  // namespace

void publish_worker_latch(int slot, Latch* latch) { store_latch(&DatabaseEntry::worker_latch, slot, latch); }
void withdraw_worker_latch(int slot) { store_latch(&DatabaseEntry::worker_latch, slot, nullptr); }
void register_worker_process(int slot, Latch* latch) { store_latch(&DatabaseEntry::process_latch, slot, latch); }
void unregister_worker_process(int slot) { store_latch(&DatabaseEntry::process_latch, slot, nullptr); }

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
    DatabaseEntry* e = entry_of_my_database();
    if (e == nullptr) return;
    for (Latch* latch : e->worker_latch) {
        if (latch != nullptr) {
            SetLatch(latch);
            return;
        }
    }
}

void wake_other_workers(int slot) {
    DatabaseEntry* e = own();
    if (e == nullptr) return;
    for (int i = 0; i < kMaxWorkers; i++) {
        Latch* latch = e->worker_latch[i];
        if (latch == nullptr || i == slot) continue;
        pg_atomic_write_u32(&e->claim_asked[i], 1);
        SetLatch(latch);  // a barrier: the flag is seen by the time the latch is
    }
}

void note_parked() {
    DatabaseEntry* e = entry_of_my_database();
    if (e == nullptr) return;
    uint64 now = static_cast<uint64>(GetCurrentTimestamp());
    uint64 old = pg_atomic_read_u64(&e->parked_at);
    while (old < now && !pg_atomic_compare_exchange_u64(&e->parked_at, &old, now)) {}
}

TimestampTz last_parked_at() {
    DatabaseEntry* e = own();
    return e == nullptr ? DT_NOEND : static_cast<TimestampTz>(pg_atomic_read_u64(&e->parked_at));
}

bool take_claim_request(int slot) {
    DatabaseEntry* e = own();
    return e != nullptr && pg_atomic_exchange_u32(&e->claim_asked[slot], 0) != 0;
}

void share_endpoint_pause(int32 endpoint_id, TimestampTz until) {
    DatabaseEntry* e = own();
    if (e == nullptr) return;
    TimestampTz now = GetCurrentTimestamp();
    SpinLockAcquire(&shared->mutex);
    // Its own entry while the pause lasts; else the entry ending first, which
    // is a free (0) or ended one if there is any.
    EndpointPause* slot = nullptr;
    for (EndpointPause& p : e->pauses)
        if (p.endpoint_id == endpoint_id && p.until > now) slot = &p;
    if (slot == nullptr) {
        slot = &e->pauses[0];
        for (EndpointPause& p : e->pauses)
            if (p.until < slot->until) slot = &p;
        slot->until = 0;
    }
    slot->endpoint_id = endpoint_id;
    slot->until = Max(slot->until, until);
    SpinLockRelease(&shared->mutex);
}

int shared_endpoint_pauses(EndpointPause* out) {
    DatabaseEntry* e = own();
    if (e == nullptr) return 0;
    TimestampTz now = GetCurrentTimestamp();
    int n = 0;
    SpinLockAcquire(&shared->mutex);
    for (const EndpointPause& p : e->pauses)
        if (p.until > now) out[n++] = p;
    SpinLockRelease(&shared->mutex);
    return n;
}

}  // namespace outbox::pg
