// Pruning: deleting what retention no longer keeps, and giving the disk space
// back once nothing is left. PostgreSQL-only: call through pg_call(), inside
// a worker transaction (one per call, except use_index_plans()).
#pragma once

extern "C" {
#include "postgres.h"
}

namespace outbox::pg {

// For the rest of the transaction, plan only index-driven scans and nested
// loops (see prune.cpp for why). Call first in a prune transaction.
void use_index_plans();

// Deletes up to `limit` delivered (finished longer than `retention_s` ago)
// and dead (`dead_retention_s`) deliveries, oldest first, and the events
// they leave without deliveries. Returns the number of deliveries deleted.
int prune_deliveries(int64 retention_s, int64 dead_retention_s, int limit);

// Deletes up to `limit` rows of outbox.attempts older than `retention_s`,
// oldest first. Returns how many.
int prune_attempts(int64 retention_s, int limit);

// Deletes up to `limit` idempotency keys past their ttl. Returns how many.
int prune_idempotency_keys(int limit);

// How far the sweep for events that no endpoint matched has come: the
// (txid, seq) of the last event it passed.
struct SweepCursor {
    int64 txid = 0;
    int64 seq = 0;
};

// Looks at up to `limit` dispatched events after `cursor`, in dispatch order,
// while they are older than `retention_s`; deletes those that have no
// deliveries (no endpoint matched them) and moves the cursor past them all.
// Returns how many events it passed.
int sweep_unmatched(int64 retention_s, int limit, SweepCursor* cursor);

// When outbox.events and outbox.deliveries hold no rows but together still
// occupy at least `min_bytes` (B-tree indexes never shrink, and VACUUM gives
// back only the heap's empty tail), truncates both, provided it can lock
// them at once without waiting. Returns the bytes given back, 0 if there was
// nothing to give back, -1 if they looked empty but were locked.
int64 truncate_if_empty(int64 min_bytes);

}  // namespace outbox::pg
