// Shared memory, per served database: where committing backends find the
// latches of their database's workers, where those workers share the pauses
// endpoints ask for (429/503 Retry-After), and what the launcher tells them
// (the server's settings) and they tell it (whether the extension is there,
// the settings made for the database). Nothing of one database is seen by another's workers.
#pragma once

#include "pg/database_settings.hpp"

extern "C" {
#include "postgres.h"
#include "datatype/timestamp.h"
#include "storage/latch.h"
}

namespace outbox::pg {

// Registers the shared memory request and startup hooks (preload only).
void install_shmem_hooks();

// --- The launcher's side. An entry is taken for a database before its
// first worker starts, and freed once none runs there.

constexpr int kNoEntry = -1;
// A free entry for `database`, its flags cleared; kNoEntry when none is free.
int take_database_entry(Oid database);
void free_database_entry(int entry);
// At the launcher's start: entries a previous launcher left are freed (it
// stopped its workers as it exited).
void release_all_database_entries();
// The server's outbox.paused and outbox.workers (postgresql.conf), which
// hold where a database has none of its own; every worker is woken when
// outbox.paused changed.
void set_server_settings(bool paused, int workers);
// outbox.workers for the entry's database, once its first worker has read
// the database's settings; 0 before.
int database_workers(int entry);
// A commit may have changed the database's settings: its first worker
// reads them again (it is woken).
void ask_database_settings(int entry);
// Whether a worker found the extension in the database (Unknown: not yet).
enum class ExtensionFound { Unknown, Present, Absent };
ExtensionFound database_extension(int entry);
// Sets the latch of every running worker of the entry's database.
void wake_database_workers(int entry);

// --- A worker's side, in its own database's entry.

// At the worker's start, once connected: the entry the launcher took for
// its database. False when the entry is another database's now (the
// launcher that started it is gone): the worker must leave.
bool attach_worker(int entry);
// outbox.paused for this database: its own setting, else the server's.
bool database_paused();
// Whether the settings made for this database are to be read (again), by
// its first worker (database_settings.hpp), which publishes them: the
// launcher is woken when outbox.workers changed, the database's other
// workers when outbox.paused did.
bool database_settings_stale();
void publish_database_settings(const DatabaseSettings& settings);
// Tells the launcher whether the extension is installed (sets its latch).
void report_extension(ExtensionFound found);

// A worker publishes its latch while it runs and claims: commits and
// other workers wake it through it. A paused worker withdraws it, so that
// commits do not wake it for nothing, but is still woken by a change of
// the settings (outbox.paused, for the server or its database): its latch
// is registered for those from its start to its exit.
void publish_worker_latch(int slot, Latch* latch);
void withdraw_worker_latch(int slot);
void register_worker_process(int slot, Latch* latch);
void unregister_worker_process(int slot);

// Sets the latch of one running worker of the caller's database, the first
// one, so that a commit costs one wake-up whatever outbox.workers is; a
// worker that finds more than it can take wakes the others
// (wake_other_workers). Safe in any backend; a no-op when the library was
// not preloaded or no worker serves this database.
void wake_a_worker();

// Sets the latches of every running worker of this database but `slot`,
// asking them to claim (a commit's wake-up asks only for a dispatch).
void wake_other_workers(int slot);

// Whether another worker of this database asked `slot` to claim since the
// last call.
bool take_claim_request(int slot);

// A delivery was parked behind an earlier pending one of its key (a
// dispatch, or a claim handed back): any backend of the database says so,
// with the time. A worker holding the result of a keyed delivery made
// before that time writes it at once, since a parked delivery may be
// waiting for it; other keyed results wait to be written with the next
// transaction, like unkeyed ones (step.cpp). last_parked_at() is the time
// of the last one, or DT_NOEND without shared memory (then every keyed
// result is written at once).
void note_parked();
TimestampTz last_parked_at();

// An endpoint that asked for a pause, until when.
struct EndpointPause {
    int32 endpoint_id;
    TimestampTz until;
};
constexpr int kMaxEndpointPauses = 64;

// Records (or extends) a pause for every worker of this database to see.
// With more paused endpoints than kMaxEndpointPauses, the pause ending
// first is forgotten (its own worker still keeps it).
void share_endpoint_pause(int32 endpoint_id, TimestampTz until);

// Copies the pauses of this database that have not ended into `out`
// (kMaxEndpointPauses entries); returns how many.
int shared_endpoint_pauses(EndpointPause* out);

}  // namespace outbox::pg
