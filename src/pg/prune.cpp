// How worker 0 prunes (prune.hpp says what each step does).
//
// Plans. Pruning reads the rows that statistics know least about: rows that
// became deletable seconds ago. After a drain of 100,000 events every row is
// 'delivered' long before autovacuum analyzes the table, and with estimates
// from an emptier table the planner chose a bitmap scan of every finished row
// plus a sort to pick the oldest 1,000 (50 ms per batch), and hash joins that
// read the whole of outbox.deliveries to test "has this event deliveries
// left?" (60 ms). The prune transaction therefore plans with sequential and
// bitmap scans, hash and merge joins and sorts disabled: what remains are
// ordered index scans, TID scans and nested loops over primary keys, whose
// cost follows the batch, not the table. Plans are kept per statement and
// these statements run only in prune transactions, so they are always
// planned under these settings.
//
// Rows are deleted by ctid, rechecking that they are still finished: a row
// that outbox.replay() or redrive() made pending again after it was picked
// is rechecked by the DELETE and left alone.
#include "pg/prune.hpp"

#include "pg/plan.hpp"

#include <initializer_list>

extern "C" {
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "storage/lmgr.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
}

namespace outbox::pg {

namespace {

constexpr const char* kPruneDeliveriesSql = R"sql(
WITH gone AS (
    DELETE FROM outbox.deliveries AS d
    WHERE d.ctid = ANY (ARRAY(
            (SELECT f.ctid FROM outbox.deliveries AS f
             WHERE f.state = 'delivered' AND f.finished_at < now() - $1 * interval '1 second'
               AND f.callback_state IS DISTINCT FROM 'pending'
             ORDER BY f.finished_at LIMIT $3)
            UNION ALL
            (SELECT f.ctid FROM outbox.deliveries AS f
             WHERE f.state = 'dead' AND f.finished_at < now() - $2 * interval '1 second'
               AND f.callback_state IS DISTINCT FROM 'pending'
             ORDER BY f.finished_at LIMIT $3)))
      AND d.finished_at < now() - least($1, $2) * interval '1 second'
      AND d.callback_state IS DISTINCT FROM 'pending'  -- a callback still to be called keeps its row
    RETURNING d.event_id
)
SELECT count(*)::int4, array_agg(DISTINCT event_id) FROM gone
)sql";

// An event goes when it has no deliveries left. outbox.replay() may be
// adding one at that moment: it locks the event (FOR KEY SHARE) first. So
// events are locked here first, skipping those replay holds, and tested for
// deliveries by the next statement, whose snapshot sees every replay that
// committed before the lock; a replay that comes later waits for this
// transaction and then finds the event gone.
constexpr const char* kLockEventsSql = R"sql(
SELECT array_agg(l.id)
FROM (SELECT e.id FROM outbox.events AS e
      WHERE e.id = ANY ($1)
        AND NOT EXISTS (SELECT 1 FROM outbox.deliveries AS d WHERE d.event_id = e.id)
      FOR UPDATE OF e SKIP LOCKED) AS l
)sql";

constexpr const char* kDeleteEventsSql = R"sql(
DELETE FROM outbox.events AS e
WHERE e.id = ANY ($1)
  AND NOT EXISTS (SELECT 1 FROM outbox.deliveries AS d WHERE d.event_id = e.id)
)sql";

// Events no endpoint matched get no deliveries, so prune_deliveries never
// reaches them. The sweep walks dispatched events (txid below the done
// snapshot's xmin) in dispatch order from its cursor and stops at the first
// one younger than retention; of those it passed, the ones without
// deliveries go (the others go with their last delivery).
constexpr const char* kSweepUnmatchedSql = R"sql(
WITH head AS (
    SELECT h.id, h.txid, h.seq,
           bool_and(h.old) OVER (ORDER BY h.txid, h.seq) AS settled
    FROM (SELECT e.id, e.txid, e.seq,
                 e.created_at < now() - $3 * interval '1 second' AS old
          FROM outbox.events AS e
          WHERE (e.txid, e.seq) > ($1::text::xid8, $2)
            AND e.txid < (SELECT pg_snapshot_xmin(s.done_snapshot) FROM outbox.dispatch_state AS s)
          ORDER BY e.txid, e.seq
          LIMIT $4) AS h
), passed AS (
    SELECT * FROM head WHERE settled
)
SELECT (SELECT count(*) FROM passed)::int4,
       (SELECT (array_agg(p.txid ORDER BY p.txid DESC, p.seq DESC))[1]::text::int8 FROM passed AS p),
       (SELECT (array_agg(p.seq ORDER BY p.txid DESC, p.seq DESC))[1] FROM passed AS p),
       (SELECT array_agg(p.id) FROM passed AS p
        WHERE NOT EXISTS (SELECT 1 FROM outbox.deliveries AS d WHERE d.event_id = p.id))
)sql";

// Attempt history, oldest first (outbox.attempt_retention).
constexpr const char* kPruneAttemptsSql = R"sql(
DELETE FROM outbox.attempts AS a
WHERE a.ctid = ANY (ARRAY(
        SELECT f.ctid FROM outbox.attempts AS f
        WHERE f.started_at < now() - $1 * interval '1 second'
        ORDER BY f.started_at LIMIT $2))
  AND a.started_at < now() - $1 * interval '1 second'
)sql";

// Idempotency keys past their ttl, oldest first. A key taken anew since
// (outbox.idempotency_begin() replaces an expired one) is rechecked here.
constexpr const char* kPruneKeysSql = R"sql(
DELETE FROM outbox.idempotency_keys AS k
WHERE k.ctid = ANY (ARRAY(
        SELECT f.ctid FROM outbox.idempotency_keys AS f
        WHERE f.expires_at < now()
        ORDER BY f.expires_at LIMIT $1))
  AND k.expires_at < now()
)sql";

constexpr const char* kSizeIfEmptySql = R"sql(
SELECT pg_total_relation_size('outbox.events'::regclass)
       + pg_total_relation_size('outbox.deliveries'::regclass)
WHERE NOT EXISTS (SELECT 1 FROM outbox.events)
  AND NOT EXISTS (SELECT 1 FROM outbox.deliveries)
)sql";

Plan prune_deliveries_plan{kPruneDeliveriesSql, 3, {INT8OID, INT8OID, INT4OID}, nullptr};
Plan lock_events_plan{kLockEventsSql, 1, {UUIDARRAYOID}, nullptr};
Plan delete_events_plan{kDeleteEventsSql, 1, {UUIDARRAYOID}, nullptr};
Plan sweep_plan{kSweepUnmatchedSql, 4, {INT8OID, INT8OID, INT8OID, INT4OID}, nullptr};
Plan size_if_empty_plan{kSizeIfEmptySql, 0, {}, nullptr};
Plan prune_attempts_plan{kPruneAttemptsSql, 2, {INT8OID, INT4OID}, nullptr};
Plan prune_keys_plan{kPruneKeysSql, 1, {INT4OID}, nullptr};

// Bytes the two tables occupy if both are empty as `snapshot` sees them
// (InvalidSnapshot: the statement's own), else -1.
int64 size_if_empty(Snapshot snapshot) {
    int rc = snapshot == InvalidSnapshot
                 ? SPI_execute_plan(prepared(size_if_empty_plan), nullptr, nullptr, true, 0)
                 : SPI_execute_snapshot(prepared(size_if_empty_plan), nullptr, nullptr, snapshot,
                                        InvalidSnapshot, true, false, 0);
    if (rc != SPI_OK_SELECT) elog(ERROR, "outbox: worker query failed: %s", SPI_result_code_string(rc));
    if (SPI_processed == 0) return -1;
    bool isnull = true;
    Datum bytes = result_value(1, &isnull);
    return isnull ? -1 : DatumGetInt64(bytes);
}

// Deletes those of the events `ids` that have no deliveries (see kLockEventsSql).
void delete_events_without_deliveries(Datum ids) {
    Datum args[1] = {ids};
    execute(lock_events_plan, args, nullptr, SPI_OK_SELECT);
    bool isnull = true;
    Datum locked = result_value(1, &isnull);
    if (isnull) return;
    args[0] = locked;
    execute(delete_events_plan, args, nullptr, SPI_OK_DELETE);
}

}  // namespace

void use_index_plans() {
    for (const char* name : {"enable_seqscan", "enable_bitmapscan", "enable_hashjoin",
                             "enable_mergejoin", "enable_sort"})
        (void)set_config_option(name, "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0,
                                false);
}

int prune_deliveries(int64 retention_s, int64 dead_retention_s, int limit) {
    Datum values[3] = {Int64GetDatum(retention_s), Int64GetDatum(dead_retention_s),
                       Int32GetDatum(limit)};
    execute(prune_deliveries_plan, values, nullptr, SPI_OK_SELECT);
    bool isnull = true;
    int32 deleted = DatumGetInt32(result_value(1, &isnull));
    Datum ids = result_value(2, &isnull);
    if (deleted > 0 && !isnull) delete_events_without_deliveries(ids);
    return deleted;
}

int prune_attempts(int64 retention_s, int limit) {
    Datum values[2] = {Int64GetDatum(retention_s), Int32GetDatum(limit)};
    return execute(prune_attempts_plan, values, nullptr, SPI_OK_DELETE);
}

int prune_idempotency_keys(int limit) {
    Datum values[1] = {Int32GetDatum(limit)};
    return execute(prune_keys_plan, values, nullptr, SPI_OK_DELETE);
}

int sweep_unmatched(int64 retention_s, int limit, SweepCursor* cursor) {
    Datum values[4] = {Int64GetDatum(cursor->txid), Int64GetDatum(cursor->seq),
                       Int64GetDatum(retention_s), Int32GetDatum(limit)};
    execute(sweep_plan, values, nullptr, SPI_OK_SELECT);
    bool isnull = true;
    int32 passed = DatumGetInt32(result_value(1, &isnull));
    if (passed == 0) return 0;
    cursor->txid = DatumGetInt64(result_value(2, &isnull));
    cursor->seq = DatumGetInt64(result_value(3, &isnull));
    Datum unmatched = result_value(4, &isnull);
    if (!isnull) delete_events_without_deliveries(unmatched);
    return passed;
}

int64 truncate_if_empty(int64 min_bytes) {
    // Cheap test first, without locks: most of the time there are rows.
    int64 bytes = size_if_empty(InvalidSnapshot);
    if (bytes < min_bytes) return 0;
    // A transaction that has written to either table holds a lock on it
    // until it ends, so getting these locks at once means that every row
    // ever written is committed (or gone) and visible to a snapshot taken
    // now. Not waiting means enqueue() is never held up behind this.
    Oid schema = get_namespace_oid("outbox", false);
    Oid events = get_relname_relid("events", schema);
    Oid deliveries = get_relname_relid("deliveries", schema);
    if (!ConditionalLockRelationOid(events, AccessExclusiveLock)) return -1;
    if (!ConditionalLockRelationOid(deliveries, AccessExclusiveLock)) return -1;
    // The transaction's own snapshot may predate the locks (and under
    // REPEATABLE READ is kept): look again with the latest one.
    if (size_if_empty(GetLatestSnapshot()) < 0) return 0;
    int rc = SPI_execute("TRUNCATE outbox.events, outbox.deliveries", false, 0);
    if (rc != SPI_OK_UTILITY) elog(ERROR, "outbox: truncate failed: %s", SPI_result_code_string(rc));
    return bytes;
}

}  // namespace outbox::pg
