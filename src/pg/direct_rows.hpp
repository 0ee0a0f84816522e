// Rows of the queue tables written without SQL: what the worker writes for
// every event and every result (dispatch, lease, record) goes through the
// executor's row functions, as logical replication's apply worker and
// TimescaleDB's job bookkeeping write theirs, instead of a planned
// statement: no plan to check, no executor to start for a plan of thirty
// nodes, no CHECK expressions parsed again for every statement. README,
// "How it works", says what it saves.
//
// What a statement does besides is done here too: index entries (partial
// ones included), unique checks with ON CONFLICT DO NOTHING's speculative
// insertion, READ COMMITTED's re-check of a row another transaction changed
// meanwhile, NOT NULL and CHECK constraints, table privileges of the
// calling role, the replica identity a publication of updates needs;
// heap_insert/heap_update themselves do TOAST, HOT, WAL (logical decoding
// included) and the statistics for autovacuum. What it cannot do, it
// refuses: a table with triggers for what is written (the extension's own
// fire only for rows a restore loads), rules, row-level security or
// partitions.
// PostgreSQL-only: call through pg_call(), inside a transaction.
#pragma once

extern "C" {
#include "postgres.h"

#include "access/skey.h"
#include "access/stratnum.h"
#include "executor/tuptable.h"
#include "nodes/execnodes.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"
}

namespace outbox::pg {

struct DirectTable {
    Relation rel = nullptr;
    EState* estate = nullptr;
    ResultRelInfo* result = nullptr;
    TupleTableSlot* current = nullptr;  // a row as read (or locked)
    TupleTableSlot* next = nullptr;     // the row to write
    bool checks = false;                // CHECK constraints beyond the extension's own: evaluated
};

// Opens outbox.`name` (RowExclusiveLock) and its indexes for writing. The
// CHECK constraints named in `own` (nullptr-terminated) are the extension's,
// which the rows written here satisfy by construction; any other is
// evaluated for each row. `speculative`: unique indexes are prepared for
// insert_unless_present(). Rows are updated, and inserted if `inserts`.
void open_direct(DirectTable& t, const char* name, const char* const* own, bool speculative, bool inserts);
void close_direct(DirectTable& t);

// The `next` slot emptied, to be filled column by column (ExecStoreVirtualTuple after).
void clear_next(DirectTable& t);

// Inserts `next`.
void insert_next(DirectTable& t);

// Inserts `next` unless a unique index already holds its key, as ON
// CONFLICT DO NOTHING does (waiting for an insert in progress elsewhere).
// Returns whether it did.
bool insert_next_unless_present(DirectTable& t);

// Reads into `current` the row of `index` whose key columns equal `keys`
// (one per column, in index order) as `snapshot` sees it. Returns whether
// there is one.
bool fetch_by_key(DirectTable& t, Relation index, ScanKey keys, int nkeys, Snapshot snapshot);

// Computes `next` from `current`; false: the row is no longer to be written.
using Rewrite = bool (*)(DirectTable& t, void* arg);

// Writes over the row in `current` what `rewrite` makes of it. When another
// transaction changed the row meanwhile, its newest version is locked into
// `current` and rewritten again (READ COMMITTED, as UPDATE re-checks its
// WHERE). Returns whether a row was written (false: rewrite declined, or
// the row is gone, or this transaction wrote it already).
bool rewrite_current(DirectTable& t, Snapshot snapshot, Rewrite rewrite, void* arg);

// A scan key on column `column` (1-based) of `index`: `strategy` (a B-tree
// one: BTEqualStrategyNumber, BTGreaterEqualStrategyNumber, ...) against
// `value` of the column's type.
void index_key(ScanKey key, Relation index, int column, StrategyNumber strategy, Datum value);

}  // namespace outbox::pg
