// Writing one event row without SQL: what enqueue() does on every call.
// PostgreSQL-only: call through pg_call().
#pragma once

extern "C" {
#include "postgres.h"
}

namespace outbox::pg {

// The columns enqueue() supplies; outbox.events fills seq, txid and
// created_at by their defaults.
struct EventRow {
    Datum id;  // uuid
    Datum topic;
    Datum key;
    bool key_null;
    Datum payload;
    Datum headers;
    bool headers_null;
    Datum on_result = 0;       // text; 0: no callback
    Datum on_result_role = 0;  // text, with on_result
};

// Inserts `row` into outbox.events through the executor's single-row insert
// (the one logical replication's apply uses) instead of a planned INSERT:
// no plan to check, no executor to start, no SPI. That is most of what an
// enqueue costs on top of a hand-made outbox table's INSERT.
//
// Returns false, having written nothing, when the table is not the one this
// code was written for: columns changed, triggers, row-level security or
// partitions. The caller then uses the planned INSERT, which handles all of
// them. Not for ON CONFLICT: an idempotent enqueue uses the planned INSERT.
// The defaults are the extension script's (identity, pg_current_xact_id(),
// now()); a default changed by hand with ALTER COLUMN is not noticed.
bool insert_event_directly(const EventRow& row);

}  // namespace outbox::pg
