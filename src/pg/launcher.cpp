// The launcher: a background worker bound to no database that serves every
// database with the extension (outbox.database empty), or those it names.
//
// It reads pg_database and the per-database settings (launcher_catalog),
// and for each database that may be served starts its first worker, which
// looks for the extension: found, the launcher starts the others; not
// found, the worker leaves and the database is left alone until a commit
// says the extension may have come (launcher_requests). The workers share
// one budget, outbox.max_workers, each database getting at least one
// (core/budget). Commands that need a database free of sessions (DROP
// DATABASE, RENAME, ...) hold it: its workers are stopped until the command's
// transaction ends (utility_hook). Workers that exit by themselves are
// restarted with a backoff (launcher_workers).
//
// Told of changes at commit, the launcher also reads the catalogs every
// few seconds, so that nothing missed stays missed for long.
//
// Plain PostgreSQL code, no C++ objects: an ERROR here simply ends the
// launcher (stopping its workers), and the postmaster starts it again.
#include "pg/worker.hpp"

#include "core/budget.hpp"
#include "pg/gucs.hpp"
#include "pg/launcher_catalog.hpp"
#include "pg/launcher_requests.hpp"
#include "pg/launcher_workers.hpp"
#include "pg/limits.hpp"
#include "pg/shmem.hpp"
#include "pg/stats.hpp"
#include "pg/wait_events.hpp"

#include <span>

extern "C" {
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/logicallauncher.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace outbox::pg {

namespace {

constexpr long kRescanIntervalMs = 5000;  // the catalogs again, in case a change was not told
constexpr long kMaxWaitMs = 10000;
constexpr int kMaxProbes = 4;  // first workers looking for the extension at once

enum class Extension { Unknown, Present, Absent };

struct Database {
    Oid oid;
    NameData name;
    bool exists;     // in the latest scan of pg_database
    bool enterable;  // connections allowed, no template, valid
    bool named;      // served if it has the extension: named in outbox.database, or any when empty
    Extension extension;
    bool reprobe;  // a commit changed the extension while its first worker was looking
    bool leaving;  // its workers found no extension and leave; its entry is freed once they have
    bool held;     // a DROP DATABASE, RENAME, ... waits for its workers to stop
    int entry;     // in shared memory, kNoEntry: none
    int grant;     // workers it gets
    int logged_grant;
    DatabaseWorkers workers;
};

Database* databases = nullptr;
int n_databases = 0;
int capacity = 0;
bool every_database = false;
List* named_databases = NIL;  // outbox.database as a list
int logged_total = 0;         // the worker total "max_worker_processes too small" was said for
MemoryContext scratch = nullptr;

Database* find(Oid oid) {
    for (int i = 0; i < n_databases; i++)
        if (databases[i].oid == oid) return &databases[i];
    return nullptr;
}

Database* add(Oid oid) {
    if (n_databases == capacity) {
        capacity = Max(16, capacity * 2);
        databases = static_cast<Database*>(
            databases ? repalloc(databases, sizeof(Database) * capacity)
                      : MemoryContextAlloc(TopMemoryContext, sizeof(Database) * capacity));
    }
    Database* d = &databases[n_databases++];
    memset(static_cast<void*>(d), 0, sizeof(Database));
    d->oid = oid;
    d->entry = kNoEntry;
    // Named databases are served whether or not they have the extension yet:
    // their workers wait for it, as before 0.3.0.
    d->extension = every_database ? Extension::Unknown : Extension::Present;
    return d;
}

int position_in_list(const char* name) {
    int i = 0;
    ListCell* cell;
    foreach (cell, named_databases) {
        if (strcmp(static_cast<const char*>(lfirst(cell)), name) == 0) return i;
        i++;
    }
    return -1;
}

// Named databases that do not exist (yet) are said once each, and again
// when they appear; named ones that cannot be entered are said once too.
void note_named_databases(const DatabaseRow* rows, int n) {
    int i = 0;
    ListCell* cell;
    foreach (cell, named_databases) {
        const char* name = static_cast<const char*>(lfirst(cell));
        const DatabaseRow* row = nullptr;
        for (int r = 0; r < n && row == nullptr; r++)
            if (strcmp(NameStr(rows[r].name), name) == 0) row = &rows[r];
        if (row == nullptr) {
            if (note_missing_database_once(i))
                ereport(WARNING,
                        (errmsg("outbox: database \"%s\" named by outbox.database does not exist; no events are "
                                "delivered until it does", name),
                         errhint("Create the database and run CREATE EXTENSION outbox in it, or set "
                                 "outbox.database and restart the server.")));
        } else if (!row->enterable) {
            if (note_missing_database_once(i))
                ereport(WARNING,
                        (errmsg("outbox: database \"%s\" named by outbox.database is a template or does not allow "
                                "connections; it is not served", name)));
        } else if (missing_database_noted(i)) {
            ereport(LOG, (errmsg("outbox: database \"%s\" exists now; starting workers", name)));
            clear_missing_database_note(i);
        }
        i++;
    }
}

void rescan() {
    MemoryContext old = MemoryContextSwitchTo(scratch);
    int n = 0;
    DatabaseRow* rows = scan_databases(&n);
    for (int i = 0; i < n_databases; i++) databases[i].exists = false;
    for (int i = 0; i < n; i++) {
        const DatabaseRow& row = rows[i];
        Database* d = find(row.oid);
        bool named = every_database || position_in_list(NameStr(row.name)) >= 0;
        if (d == nullptr) {
            d = add(row.oid);
        } else if (strcmp(NameStr(d->name), NameStr(row.name)) != 0 && d->named && named &&
                   d->extension == Extension::Present) {
            ereport(LOG, (errmsg("outbox: database \"%s\" is now called \"%s\"; delivery goes on", NameStr(d->name),
                                 NameStr(row.name))));
        }
        d->name = row.name;
        d->exists = true;
        d->enterable = row.enterable;
        d->named = named;
    }
    if (!every_database) note_named_databases(rows, n);
    MemoryContextSwitchTo(old);
    MemoryContextReset(scratch);
}

// A commit created, altered or dropped the extension in these databases.
void apply_rechecks(const LauncherRequests& r) {
    for (int i = 0; i < n_databases; i++) {
        Database* d = &databases[i];
        bool asked = r.recheck_all;
        for (int k = 0; k < r.n_recheck && !asked; k++) asked = r.recheck[k] == d->oid;
        if (!asked) continue;
        if (d->extension == Extension::Absent) d->extension = Extension::Unknown;  // look again
        else if (d->extension == Extension::Unknown && worker_running(&d->workers, 0)) d->reprobe = true;
        // They look at the extension in their next round, and the first
        // reads the database's settings again.
        if (d->entry != kNoEntry) {
            ask_database_settings(d->entry);
            wake_database_workers(d->entry);
        }
    }
}

void note_holds() {
    Oid held[kMaxHolds];
    int n = held_databases(held);
    for (int i = 0; i < n_databases; i++) {
        Database* d = &databases[i];
        d->held = false;
        for (int k = 0; k < n; k++) d->held = d->held || held[k] == d->oid;
    }
    // Databases the launcher has no workers in may go on at once.
    for (int k = 0; k < n; k++)
        if (find(held[k]) == nullptr) acknowledge_holds(held[k]);
}

// What a worker found of the extension (serving every database: those
// without it are left until a commit says it may have come).
void take_extension_answer(Database* d) {
    if (!every_database || d->entry == kNoEntry || d->leaving) return;
    ExtensionFound found = database_extension(d->entry);
    if (found == ExtensionFound::Present && d->extension != Extension::Present) {
        d->extension = Extension::Present;
        ereport(LOG, (errmsg("outbox: serving database \"%s\"", NameStr(d->name))));
    } else if (found == ExtensionFound::Absent) {
        stop_workers(&d->workers);  // they are leaving: not exits to restart
        d->leaving = true;
        if (d->extension == Extension::Present)
            ereport(LOG, (errmsg("outbox: database \"%s\" has no outbox extension any more; its workers stop",
                                 NameStr(d->name))));
        d->extension = d->reprobe ? Extension::Unknown : Extension::Absent;
        d->reprobe = false;
        stats_forget_database(d->oid);
        limits_forget_database(d->oid);
    }
}

bool wants_serving(const Database* d) {
    return d->exists && d->enterable && d->named && !d->held && d->extension != Extension::Absent;
}

// Background worker processes that outbox's workers may have at most.
int worker_processes_left() {
    return max_worker_processes - 1 - (max_logical_replication_workers > 0 ? 1 : 0);
}

// Divides outbox.max_workers among the databases served; one worker each
// while their extension is being looked for, at most kMaxProbes of them.
void grant_workers() {
    int* wants = static_cast<int*>(MemoryContextAlloc(scratch, sizeof(int) * Max(n_databases, 1)));
    int* grants = static_cast<int*>(MemoryContextAlloc(scratch, sizeof(int) * Max(n_databases, 1)));
    int* index = static_cast<int*>(MemoryContextAlloc(scratch, sizeof(int) * Max(n_databases, 1)));
    int n = 0, probes = 0;
    bool starving = false;  // a database has no worker: no background worker slot was free
    for (int i = 0; i < n_databases; i++) {
        const Database& d = databases[i];
        if (d.extension == Extension::Unknown && worker_running(&d.workers, 0)) probes++;
        starving = starving || (wants_serving(&d) && worker_lacks_slot(&d.workers, 0));
    }
    for (int i = 0; i < n_databases; i++) {
        Database* d = &databases[i];
        d->grant = 0;
        if (!wants_serving(d)) continue;
        if (d->extension == Extension::Unknown && !worker_running(&d->workers, 0) && ++probes > kMaxProbes) continue;
        int want = d->entry == kNoEntry ? 0 : database_workers(d->entry);  // 0: not read yet
        wants[n] = d->extension == Extension::Present ? Max(want, 1) : 1;
        index[n++] = i;
    }
    // Beyond one each, no more than max_worker_processes can run beside the
    // launcher and PostgreSQL's logical replication launcher (other
    // extensions and parallel queries take from it too). While a database
    // has none, the others give up their second and later.
    int budget = starving ? 0 : Min(guc_max_workers, worker_processes_left());
    core::share_workers(std::span<const int>(wants, n), std::span<int>(grants, n), budget);
    int total = 1;  // the launcher
    for (int k = 0; k < n; k++) {
        Database* d = &databases[index[k]];
        d->grant = grants[k];
        total += grants[k];
        if (d->grant < wants[k] && d->grant != d->logged_grant && !starving)
            ereport(LOG, (errmsg("outbox: database \"%s\" gets %d of the %d workers it asks for: %d workers are "
                                 "shared by %d databases",
                                 NameStr(d->name), d->grant, wants[k], budget, n),
                          errdetail("outbox.max_workers is %d; max_worker_processes (%d) leaves %d beside the "
                                    "launchers. Every database gets at least one.",
                                    guc_max_workers, max_worker_processes, worker_processes_left())));
        d->logged_grant = d->grant < wants[k] ? d->grant : 0;
    }
    int needed = max_worker_processes + (total - 1 - worker_processes_left());
    if (needed > max_worker_processes && total != logged_total)
        ereport(WARNING,
                (errmsg("outbox: max_worker_processes (%d) is too small for the outbox launcher and %d workers "
                        "in %d databases", max_worker_processes, total - 1, n),
                 errhint("Raise max_worker_processes to at least %d and restart the server, or lower "
                         "outbox.workers or outbox.max_workers.", needed)));
    logged_total = needed > max_worker_processes ? total : 0;
    MemoryContextReset(scratch);
}

// Starts, stops and restarts each database's workers. Returns how long
// until a start is due.
long supervise(TimestampTz now) {
    long wait_ms = kMaxWaitMs;
    for (int i = 0; i < n_databases; i++) take_extension_answer(&databases[i]);
    grant_workers();
    for (int i = 0; i < n_databases; i++) {
        Database* d = &databases[i];
        int running = reap_workers(&d->workers, NameStr(d->name), now);
        if (d->grant == 0 || d->leaving) {
            stop_workers(&d->workers);
            if (running > 0) continue;  // their exits set the latch
            if (d->entry != kNoEntry) {
                free_database_entry(d->entry);
                d->entry = kNoEntry;
                if (wants_serving(d)) wait_ms = 0;  // to look for the extension again
            }
            d->leaving = false;
            if (d->held) acknowledge_holds(d->oid);
            continue;
        }
        if (d->entry == kNoEntry) {
            d->entry = take_database_entry(d->oid);
            if (d->entry == kNoEntry) continue;  // max_worker_processes entries are all in use
        }
        WorkerStart start;
        memset(&start, 0, sizeof(start));
        start.database = d->oid;
        start.entry = d->entry;
        start.leave_without_extension = every_database;
        start.name = d->name;
        // Until the extension is found, only the first worker looks for it.
        int count = d->extension == Extension::Present ? d->grant : 1;
        wait_ms = Min(wait_ms, keep_workers(&d->workers, start, count, now, kMaxWaitMs));
    }
    // Databases dropped, and left by their workers, are forgotten.
    for (int i = n_databases - 1; i >= 0; i--) {
        Database* d = &databases[i];
        if (d->exists || d->entry != kNoEntry) continue;
        stats_forget_database(d->oid);
        limits_forget_database(d->oid);
        databases[i] = databases[--n_databases];
    }
    return wait_ms;
}

void on_launcher_exit(int, Datum) {
    // Its workers would otherwise outlive it, unknown to the next launcher.
    for (int i = 0; i < n_databases; i++) stop_workers(&databases[i].workers);
    launcher_detach();
}

}  // namespace

}  // namespace outbox::pg

extern "C" PGDLLEXPORT void outbox_launcher_main(Datum) {
    using namespace outbox::pg;
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);  // shared catalogs only
    pgstat_report_appname("outbox launcher");
    scratch = AllocSetContextCreate(TopMemoryContext, "outbox launcher scans", ALLOCSET_DEFAULT_SIZES);
    every_database = guc_database == nullptr || guc_database[0] == '\0';
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    named_databases = served_database_names();
    MemoryContextSwitchTo(old);
    release_all_database_entries();  // a previous launcher's, whose workers it stopped
    set_server_settings(guc_paused, guc_workers);
    launcher_attach();
    before_shmem_exit(on_launcher_exit, 0);

    TimestampTz next_scan = 0;
    while (!ShutdownRequestPending) {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
            set_server_settings(guc_paused, guc_workers);
        }
        LauncherRequests requests;
        take_launcher_requests(&requests);
        TimestampTz now = GetCurrentTimestamp();
        if (requests.rescan || requests.n_recheck > 0 || requests.recheck_all || now >= next_scan) {
            rescan();
            next_scan = TimestampTzPlusMilliseconds(now, kRescanIntervalMs);
        }
        apply_rechecks(requests);
        note_holds();
        long wait_ms = supervise(now);
        wait_ms = Min(wait_ms, Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_scan), 10L));
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, wait_ms, wait_event_launcher_main());
        ResetLatch(MyLatch);
    }
    proc_exit(0);
}
