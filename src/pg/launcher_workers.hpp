// The worker processes of one database as the launcher keeps them: started
// as dynamic background workers (never restarted by the postmaster),
// restarted with a backoff when they exit by themselves, stopped with
// SIGTERM (a clean shutdown: results written, claims handed back) when the
// launcher decides so.
//
// PostgreSQL-only code: plain C data; errors end the launcher.
#pragma once

#include "pg/gucs.hpp"
#include "pg/worker.hpp"

extern "C" {
#include "postgres.h"
#include "datatype/timestamp.h"
#include "postmaster/bgworker.h"
}

namespace outbox::pg {

struct WorkerProcess {
    BackgroundWorkerHandle* handle;  // nullptr: none
    TimestampTz started_at;
    TimestampTz restart_at;
    long restart_delay_ms;
    bool stopping;        // terminated by the launcher: not an exit to back off from
    bool no_slot_logged;  // "no free background worker slot" said for this one
};

struct DatabaseWorkers {
    WorkerProcess procs[kMaxWorkers];
};

// Notes the workers that exited; those that exited by themselves are
// restarted after a delay that grows while they keep exiting soon after
// starting. Returns how many are running or starting.
int reap_workers(DatabaseWorkers* w, const char* database, TimestampTz now);

// Whether worker `slot` is running or starting.
bool worker_running(const DatabaseWorkers* w, int slot);
// Whether worker `slot` could not start for want of a background worker slot.
bool worker_lacks_slot(const DatabaseWorkers* w, int slot);

// Keeps workers 0 .. count-1 running, starting those whose delay has
// passed, and stops those from `count` on. Returns how long (ms) until a
// start is due, at most `max_wait_ms`. A worker that finds no free
// background worker slot is logged once and tried again.
long keep_workers(DatabaseWorkers* w, const WorkerStart& start, int count, TimestampTz now, long max_wait_ms);

// Stops every worker (SIGTERM); reap_workers() says when they are gone.
void stop_workers(DatabaseWorkers* w);

}  // namespace outbox::pg
