#include "pg/launcher_catalog.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
}

namespace outbox::pg {

namespace {

// Into `cxt`, which outlives the transaction.
void read_databases(MemoryContext cxt, DatabaseRow** rows, int* n) {
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
    int capacity = 16;
    *rows = static_cast<DatabaseRow*>(MemoryContextAllocZero(cxt, sizeof(DatabaseRow) * capacity));
    *n = 0;
    HeapTuple tuple;
    while ((tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr) {
        Form_pg_database db = (Form_pg_database)GETSTRUCT(tuple);
        if (*n == capacity) {
            capacity *= 2;
            *rows = static_cast<DatabaseRow*>(repalloc(*rows, sizeof(DatabaseRow) * capacity));
        }
        DatabaseRow& row = (*rows)[(*n)++];
        row.oid = db->oid;
        row.name = db->datname;
        // A template must stay free of sessions (CREATE DATABASE copies it
        // only then); one that refuses connections is never entered; an
        // invalid one is what an interrupted DROP DATABASE left.
        row.enterable = db->datallowconn && !db->datistemplate && !database_is_invalid_form(db);
    }
    table_endscan(scan);
    table_close(rel, AccessShareLock);
}

}  // namespace

DatabaseRow* scan_databases(int* n) {
    DatabaseRow* rows = nullptr;
    MemoryContext caller = CurrentMemoryContext;
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    read_databases(caller, &rows, n);
    PopActiveSnapshot();
    CommitTransactionCommand();
    return rows;
}

}  // namespace outbox::pg
