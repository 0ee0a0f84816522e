// Claim: due deliveries of one endpoint, locked (FOR UPDATE SKIP LOCKED, so
// concurrent claimers never get the same row), leased and counted, with the
// pipelines behind keyed heads. The worker and outbox.claim() (relay.cpp)
// run these statements; queue.hpp says what they do.
//
// The partial index deliveries_due serves the scan and deliveries_key_order
// the per-key test, so the cost does not grow with the backlog. Rows found
// by a scan whose size the planner cannot know (a LIMIT with a parameter:
// it assumes a tenth of the table) are updated by primary key through an
// array, never joined: a hash join over the table would read all of it.
#include "pg/queue.hpp"

#include "pg/plan.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
}

namespace outbox::pg {

namespace {

// $1 endpoint, $2 max_rows, $3 lease_ms. A keyed delivery is a head only
// when no earlier delivery of its key is pending, nor ended with a callback
// that has not committed yet (deliveries_callbacks: empty unless callbacks
// failed). A restore loads deliveries before their events: those wait
// until the events are there.
constexpr const char* kClaimHeadsSql = R"sql(
WITH heads AS MATERIALIZED (
    SELECT d.event_id
    FROM outbox.deliveries AS d
    WHERE d.state = 'pending'
      AND d.endpoint_id = $1
      AND d.next_attempt_at <= pg_catalog.now()
      AND (d.key IS NULL OR NOT EXISTS (
            SELECT FROM outbox.deliveries AS earlier
            WHERE earlier.state = 'pending'
              AND earlier.endpoint_id = d.endpoint_id
              AND earlier.key = d.key
              AND earlier.seq < d.seq)
          AND NOT EXISTS (
            SELECT FROM outbox.deliveries AS earlier
            WHERE earlier.callback_state = 'pending'
              AND earlier.endpoint_id = d.endpoint_id
              AND earlier.key = d.key
              AND earlier.seq < d.seq))
      AND EXISTS (SELECT FROM outbox.events AS e WHERE e.id = d.event_id)
    ORDER BY d.next_attempt_at, d.seq
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE outbox.deliveries AS d
    SET attempts = d.attempts + 1,
        next_attempt_at = pg_catalog.now() + $3 * interval '1 millisecond',
        last_attempt_at = pg_catalog.now()
    WHERE d.endpoint_id = $1
      AND d.event_id = ANY (ARRAY(SELECT h.event_id FROM heads AS h))
    RETURNING d.event_id, d.attempts, d.created_at, d.key, d.seq
)
SELECT l.event_id, l.attempts, e.topic, e.payload::text, e.headers, l.created_at, l.key, l.seq, $1
FROM leased AS l
CROSS JOIN LATERAL (SELECT e.topic, e.payload, e.headers FROM outbox.events AS e
                    WHERE e.id = l.event_id LIMIT 1) AS e
ORDER BY l.seq
)sql";

// $1 endpoint, $2/$3/$4 the keyed heads' ids, keys and seqs, $5 followers
// per head, $6 lease_ms. Each head's next deliveries in seq order, read
// first and locked afterwards: a pipeline must have no gap, so it ends
// before the first row another transaction holds (SKIP LOCKED alone would
// step over it and send its successor first). A pipeline sends each
// delivery once the one before it succeeded, before that one is recorded:
// so it also ends at the first delivery with a callback (the next may go
// only once that callback has committed), and a head with one has none.
constexpr const char* kClaimFollowersSql = R"sql(
WITH candidates AS MATERIALIZED (
    SELECT h.event_id AS head, n.event_id, n.seq, n.callback
    FROM unnest($2::uuid[], $3::text[], $4::bigint[]) AS h(event_id, key, seq),
         LATERAL (SELECT n.event_id, n.seq, n.callback_state IS NOT NULL AS callback
                  FROM outbox.deliveries AS n
                  WHERE n.state = 'pending'
                    AND n.endpoint_id = $1
                    AND n.key = h.key
                    AND n.seq > h.seq
                    AND EXISTS (SELECT FROM outbox.events AS e WHERE e.id = n.event_id)
                  ORDER BY n.seq
                  LIMIT $5) AS n
    WHERE NOT EXISTS (SELECT FROM outbox.deliveries AS hd
                      WHERE hd.event_id = h.event_id AND hd.endpoint_id = $1 AND hd.callback_state IS NOT NULL)
), next AS MATERIALIZED (
    SELECT c.head, c.event_id, c.seq
    FROM (SELECT c.*, min(c.seq) FILTER (WHERE c.callback) OVER (PARTITION BY c.head) AS cut
          FROM candidates AS c) AS c
    WHERE c.cut IS NULL OR c.seq <= c.cut
), locked AS MATERIALIZED (
    SELECT d.event_id
    FROM outbox.deliveries AS d
    WHERE d.endpoint_id = $1
      AND d.event_id = ANY (ARRAY(SELECT next.event_id FROM next))
      AND d.finished_at IS NULL  -- still pending once locked
    FOR UPDATE SKIP LOCKED
), gaps AS (
    -- Per head, the first of its followers that could not be locked.
    SELECT n.head, min(n.seq) AS seq
    FROM next AS n
    LEFT JOIN locked AS l ON l.event_id = n.event_id
    WHERE l.event_id IS NULL
    GROUP BY n.head
), leased AS (
    UPDATE outbox.deliveries AS d
    SET attempts = d.attempts + 1,
        next_attempt_at = pg_catalog.now() + $6 * interval '1 millisecond',
        last_attempt_at = pg_catalog.now()
    WHERE d.endpoint_id = $1
      AND d.event_id = ANY (ARRAY(SELECT n.event_id
                                  FROM next AS n
                                  LEFT JOIN gaps AS g ON g.head = n.head
                                  WHERE g.seq IS NULL OR n.seq < g.seq))
    RETURNING d.event_id, d.attempts, d.created_at, d.key, d.seq
)
SELECT l.event_id, l.attempts, e.topic, e.payload::text, e.headers, l.created_at, l.key, l.seq, $1
FROM leased AS l
CROSS JOIN LATERAL (SELECT e.topic, e.payload, e.headers FROM outbox.events AS e
                    WHERE e.id = l.event_id LIMIT 1) AS e
ORDER BY l.seq
)sql";

Plan heads_plan{kClaimHeadsSql, 3, {INT4OID, INT4OID, INT8OID}, nullptr};
Plan followers_plan{kClaimFollowersSql, 6, {INT4OID, UUIDARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT4OID, INT8OID},
                    nullptr};

// The keyed heads' followers (`per_key` each), leased; into `rows`.
int claim_followers(int32 endpoint_id, const ClaimedRow* heads, int n_heads, int per_key, int64 lease_ms,
                    MemoryContext out, ClaimedRow** rows) {
    Datum* ids = static_cast<Datum*>(palloc(sizeof(Datum) * n_heads));
    Datum* keys = static_cast<Datum*>(palloc(sizeof(Datum) * n_heads));
    Datum* seqs = static_cast<Datum*>(palloc(sizeof(Datum) * n_heads));
    int k = 0;
    for (int i = 0; i < n_heads; i++) {
        if (heads[i].key == nullptr) continue;
        ids[k] = UUIDPGetDatum(const_cast<pg_uuid_t*>(&heads[i].event_uuid));
        keys[k] = CStringGetTextDatum(heads[i].key);
        seqs[k] = Int64GetDatum(heads[i].seq);
        k++;
    }
    Datum values[6] = {Int32GetDatum(endpoint_id),
                       PointerGetDatum(construct_array(ids, k, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR)),
                       PointerGetDatum(construct_array(keys, k, TEXTOID, -1, false, TYPALIGN_INT)),
                       PointerGetDatum(construct_array(seqs, k, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
                       Int32GetDatum(per_key), Int64GetDatum(lease_ms)};
    int n = execute(followers_plan, values, nullptr, SPI_OK_SELECT);
    *rows = static_cast<ClaimedRow*>(MemoryContextAllocZero(out, sizeof(ClaimedRow) * (n > 0 ? n : 1)));
    return read_claimed(1, 0, n, out, *rows);
}

}  // namespace

int claim_deliveries(int32 endpoint_id, int limit, int64 lease_ms, int followers, MemoryContext out,
                     ClaimedRow** rows) {
    Datum values[3] = {Int32GetDatum(endpoint_id), Int32GetDatum(limit), Int64GetDatum(lease_ms)};
    int n = execute(heads_plan, values, nullptr, SPI_OK_SELECT);
    ClaimedRow* heads = static_cast<ClaimedRow*>(MemoryContextAllocZero(out, sizeof(ClaimedRow) * (n > 0 ? n : 1)));
    n = read_claimed(1, 0, n, out, heads);
    *rows = heads;
    int keyed = 0;
    for (int i = 0; i < n; i++) keyed += heads[i].key != nullptr;
    int per_key = keyed > 0 ? followers / keyed : 0;
    if (per_key <= 0) return n;

    ClaimedRow* rest = nullptr;
    int m = claim_followers(endpoint_id, heads, n, per_key, lease_ms, out, &rest);
    if (m == 0) return n;
    // Heads and followers together, in seq order (each list is).
    ClaimedRow* all = static_cast<ClaimedRow*>(MemoryContextAlloc(out, sizeof(ClaimedRow) * (n + m)));
    int i = 0, j = 0;
    for (int k = 0; k < n + m; k++)
        all[k] = (j >= m || (i < n && heads[i].seq < rest[j].seq)) ? heads[i++] : rest[j++];
    *rows = all;
    return n + m;
}

}  // namespace outbox::pg
