#include "pg/transaction.hpp"

extern "C" {
#include "access/xact.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "pgstat.h"
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

bool extension_installed() { return OidIsValid(get_extension_oid("outbox", true)); }

}  // namespace outbox::pg
