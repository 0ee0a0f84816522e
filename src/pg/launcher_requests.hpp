// What backends ask of the launcher, through shared memory: to look at
// pg_database and the settings again (a committed CREATE DATABASE or ALTER
// DATABASE), to look again whether a database has the extension (a
// committed CREATE or DROP EXTENSION), and holds: a command that needs a
// database free of other sessions (DROP DATABASE, ALTER DATABASE … RENAME,
// … SET TABLESPACE, CREATE DATABASE … TEMPLATE) asks for that database's
// workers to stop and waits until they have. A hold ends with the
// holder's transaction, or when the holder is gone.
//
// PostgreSQL-only code (it may ereport): plain C data, no C++ objects.
#pragma once

extern "C" {
#include "postgres.h"
}

namespace outbox::pg {

Size launcher_requests_shmem_size();
void launcher_requests_shmem_init();

// --- The launcher's side.

// Publishes the launcher's latch (at its start) and withdraws it (at exit).
void launcher_attach();
void launcher_detach();

constexpr int kMaxRechecks = 32;
struct LauncherRequests {
    bool rescan;       // pg_database or the settings may have changed
    bool recheck_all;  // more databases to look at again than recheck holds
    int n_recheck;
    Oid recheck[kMaxRechecks];  // databases whose extension may have come or gone
};
// Takes what was asked since the last call.
void take_launcher_requests(LauncherRequests* out);

constexpr int kMaxHolds = 16;
// Databases held now (at most kMaxHolds, into `out`); holds whose holder
// has gone without releasing them (a FATAL error) are forgotten.
int held_databases(Oid* out);
// None of `database`'s workers runs: its holders may go on.
void acknowledge_holds(Oid database);

// Once per postmaster lifetime (not at every launcher restart), that the
// database at `position` of outbox.database does not exist is logged.
bool note_missing_database_once(int position);
bool missing_database_noted(int position);
void clear_missing_database_note(int position);

// --- Any process.

// Sets the launcher's latch (no-op when none runs).
void wake_launcher();
void request_rescan();
void request_recheck(Oid database);
void request_recheck_all();

// Stops `database`'s workers for the caller, and waits (interruptibly)
// until the launcher says none runs there, at most `timeout_ms`. Returns
// whether it did; false also when holds are all taken or no launcher runs.
bool hold_database(Oid database, int timeout_ms);
// Ends the caller's holds (at the end of its transaction).
void release_holds();

}  // namespace outbox::pg
