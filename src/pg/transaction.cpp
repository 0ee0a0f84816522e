#include "pg/transaction.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
}

namespace outbox::pg {

void begin_worker_transaction(const char* activity) {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, activity);
}

void commit_worker_transaction() {
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
    pgstat_report_stat(false);
    pgstat_report_activity(STATE_IDLE, nullptr);
}

void abort_worker_transaction() {
    // Releases SPI, snapshots, locks and memory of the failed transaction.
    AbortCurrentTransaction();
    pgstat_report_activity(STATE_IDLE, nullptr);
}

ExtensionState extension_state(char* version) {
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ, CStringGetDatum("outbox"));
    Relation rel = table_open(ExtensionRelationId, AccessShareLock);
    SysScanDesc scan = systable_beginscan(rel, ExtensionNameIndexId, true, nullptr, 1, &key);
    HeapTuple tuple = systable_getnext(scan);
    ExtensionState state = ExtensionState::Missing;
    if (HeapTupleIsValid(tuple)) {
        bool isnull = true;
        Datum installed = heap_getattr(tuple, Anum_pg_extension_extversion, RelationGetDescr(rel), &isnull);
        char* found = isnull ? pstrdup("") : TextDatumGetCString(installed);
        state = strcmp(found, OUTBOX_VERSION) == 0 ? ExtensionState::Current : ExtensionState::OtherVersion;
        if (version != nullptr) strlcpy(version, found, kVersionLength);
        pfree(found);
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return state;
}

bool extension_installed() { return extension_state(nullptr) == ExtensionState::Current; }

}  // namespace outbox::pg
