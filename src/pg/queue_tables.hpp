// The queue tables as the worker writes them directly (direct_rows.hpp):
// their columns, in the order tables.sql creates them, and their indexes.
// Opening one checks that it still has that shape (a table changed by hand
// is refused rather than written wrongly).
// PostgreSQL-only: call through pg_call(), inside a transaction.
#pragma once

#include "pg/direct_rows.hpp"

namespace outbox::pg {

namespace deliveries {
enum Column : int {
    kEventId = 1, kEndpointId, kSeq, kKey, kState, kAttempts, kNextAttemptAt, kLastAttemptAt, kLastStatus,
    kLastError, kLastDuration, kLastResponse, kFinishedAt, kCreatedAt, kCallbackState, kCallbackAttempts,
    kCallbackNextAt, kCallbackError, kLastResponseHeaders, kColumns = kLastResponseHeaders
};
}  // namespace deliveries

namespace events {
enum Column : int {
    kId = 1, kSeq, kTxid, kTopic, kKey, kPayload, kHeaders, kCreatedAt, kOnResult, kOnResultRole,
    kColumns = kOnResultRole
};
}  // namespace events

namespace dispatch_state {
enum Column : int {
    kSingleton = 1, kDoneSnapshot, kTargetSnapshot, kCursorTxid, kCursorSeq, kRestoredAt,
    kRestoredDoneSnapshot, kRestoredTargetSnapshot, kRestoredCursorTxid, kRestoredCursorSeq,
    kColumns = kRestoredCursorSeq
};
}  // namespace dispatch_state

namespace attempts {
enum Column : int { kEventId = 1, kEndpointId, kAttempt, kStartedAt, kDuration, kStatus, kError, kResponse,
                    kColumns = kResponse };
}  // namespace attempts

// outbox.events for reading (AccessShareLock).
Relation open_events();

// outbox.deliveries, outbox.dispatch_state, outbox.attempts for writing.
void open_deliveries(DirectTable& t, bool speculative);
void open_dispatch_state(DirectTable& t);
void open_attempts(DirectTable& t);

// An index of an opened table, by name (outbox.deliveries: deliveries_pkey,
// deliveries_key_order, ...).
Relation index_named(const DirectTable& t, const char* name);

// The column `column` of `slot` (deformed as needed).
Datum column(TupleTableSlot* slot, int column, bool* isnull);

// Fills `t.next` with the values of `t.current`, to be changed column by column.
void copy_current(DirectTable& t);

}  // namespace outbox::pg
