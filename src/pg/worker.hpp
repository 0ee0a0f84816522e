#pragma once

extern "C" {
#include "postgres.h"
#include "postmaster/bgworker.h"
}

namespace outbox::pg {

// What the launcher tells a worker it starts (in bgw_extra; bgw_main_arg
// is the worker's number in its database, 0 doing the housekeeping).
struct WorkerStart {
    Oid database;  // connected to by OID, so that a rename does not matter
    int entry;     // its database's entry in shared memory (shmem.hpp)
    // Serving every database that has the extension: without it, the worker
    // says so to the launcher and leaves. Serving named databases, it waits.
    bool leave_without_extension;
    NameData name;  // for log lines
};
static_assert(sizeof(WorkerStart) <= BGW_EXTRALEN, "WorkerStart must fit in bgw_extra");

// The database this worker serves, by name (as the launcher knew it).
const char* worker_database_name();
// Whether this worker leaves a database without the extension.
bool leaves_without_extension();

}  // namespace outbox::pg

// Background worker entry points, looked up by name by the postmaster.
extern "C" PGDLLEXPORT void outbox_worker_main(Datum arg);
extern "C" PGDLLEXPORT void outbox_launcher_main(Datum arg);
