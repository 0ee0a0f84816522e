#include "pg/queue.hpp"

#include "pg/plan.hpp"

#include <algorithm>

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
}

namespace outbox::pg {

namespace {

// Claim: see outbox.claim() in the install script.
constexpr const char* kClaimSql = "SELECT * FROM outbox.claim($1, $2, $3, $4)";

// Record: see outbox.record() in the install script.
constexpr const char* kRecordSql = "SELECT outbox.record($1::uuid[], $2, $3, $4, $5, $6, $7, $8, $9, $10)";

constexpr const char* kReleaseSql = R"sql(
UPDATE outbox.deliveries AS d
SET next_attempt_at = CASE WHEN d.key IS NOT NULL AND EXISTS (
                               SELECT 1 FROM outbox.deliveries AS p
                               WHERE p.state = 'pending' AND p.endpoint_id = d.endpoint_id
                                 AND p.key = d.key AND p.seq < d.seq)
                           THEN 'infinity'::timestamptz ELSE now() END,
    attempts = d.attempts - CASE WHEN $4 THEN 1 ELSE 0 END
FROM unnest($1::text[], $2::int4[], $3::int4[]) AS r(event_id, endpoint_id, attempt)
WHERE d.event_id = r.event_id::uuid
  AND d.endpoint_id = r.endpoint_id
  AND d.attempts = r.attempt
  AND d.finished_at IS NULL  -- pending; see outbox.record() for why not "state"
)sql";

// Per endpoint, so that each lookup is the first entry of an index range.
constexpr const char* kNextDueSql = R"sql(
SELECT (EXTRACT(epoch FROM min(due.at) - clock_timestamp()) * 1000)::int8
FROM outbox.endpoints AS ep,
     LATERAL (SELECT min(d.next_attempt_at) AS at
              FROM outbox.deliveries AS d
              WHERE d.state = 'pending'
                AND d.endpoint_id = ep.id
                AND d.next_attempt_at > now()
                AND d.next_attempt_at < 'infinity') AS due
WHERE ep.enabled
)sql";

constexpr const char* kEndpointsVersionSql = R"sql(
SELECT count(*)::text || '/' || coalesce(max(updated_at)::text, '') FROM outbox.endpoints
)sql";

constexpr const char* kLoadEndpointsSql = R"sql(
SELECT ep.id, ep.name, ep.url,
       (SELECT string_agg(h.key || ': ' || h.value, E'\n')
        FROM pg_catalog.jsonb_each_text(ep.headers) AS h),
       coalesce((EXTRACT(epoch FROM ep.timeout) * 1000)::int4, 0),
       ep.enabled,
       (SELECT string_agg(s.secret, ' ' ORDER BY s.created_at DESC)
        FROM outbox.endpoint_secrets AS s
        WHERE s.endpoint_id = ep.id AND (s.expires_at IS NULL OR s.expires_at > now())),
       (SELECT (EXTRACT(epoch FROM min(s.expires_at) - clock_timestamp()) * 1000)::int8
        FROM outbox.endpoint_secrets AS s
        WHERE s.endpoint_id = ep.id AND s.expires_at > now()),
       ep.failing_since IS NOT NULL,
       coalesce(ep.max_attempts, 0),
       coalesce((EXTRACT(epoch FROM ep.retry_base) * 1000)::int4, 0),
       coalesce((EXTRACT(epoch FROM ep.retry_max) * 1000)::int4, 0),
       coalesce(ep.rate_limit, 0),
       coalesce(ep.max_in_flight, 0)
FROM outbox.endpoints AS ep
ORDER BY ep.id
)sql";

constexpr const char* kDisableEndpointSql = R"sql(
UPDATE outbox.endpoints
SET enabled = false, disabled_reason = $2, disabled_at = now(), updated_at = now()
WHERE id = $1 AND enabled
)sql";

constexpr const char* kUnparkSql = "SELECT outbox.unpark_heads()";

constexpr const char* kNoteHealthSql = "SELECT outbox.note_endpoint_health($1, $2, $3, $4, $5)";

constexpr const char* kDispatchSql = "SELECT * FROM outbox.dispatch_and_lease($1, $2, $3, $4, $5)";

// A statement of its own: within the dispatch's, its snapshot would not see
// the rows the dispatch made.
constexpr const char* kClaimedSql = "SELECT * FROM outbox.claimed($1, $2)";

Plan unpark_plan{kUnparkSql, 0, {}, nullptr};
Plan dispatch_plan{kDispatchSql, 5, {INT4OID, BOOLOID, INT8OID, INT4ARRAYOID, INT4ARRAYOID}, nullptr};
Plan claimed_plan{kClaimedSql, 2, {UUIDARRAYOID, INT4ARRAYOID}, nullptr};
Plan claim_plan{kClaimSql, 4, {INT4OID, INT4OID, INT8OID, INT4OID}, nullptr};
Plan record_plan{kRecordSql, 10,
                 {TEXTARRAYOID, INT4ARRAYOID, INT4ARRAYOID, TEXTARRAYOID, INT8ARRAYOID,
                  INT4ARRAYOID, TEXTARRAYOID, INT8ARRAYOID, TEXTARRAYOID, INT8ARRAYOID},
                 nullptr};
Plan release_plan{kReleaseSql, 4, {TEXTARRAYOID, INT4ARRAYOID, INT4ARRAYOID, BOOLOID}, nullptr};
Plan next_due_plan{kNextDueSql, 0, {}, nullptr};
Plan endpoints_version_plan{kEndpointsVersionSql, 0, {}, nullptr};
Plan load_endpoints_plan{kLoadEndpointsSql, 0, {}, nullptr};
Plan disable_endpoint_plan{kDisableEndpointSql, 2, {INT4OID, TEXTOID}, nullptr};
Plan note_health_plan{kNoteHealthSql, 5, {INT4OID, BOOLOID, TIMESTAMPTZOID, INT4OID, TEXTOID}, nullptr};

// Microseconds since the Unix epoch, as outbox.record() takes times.
int64 unix_us(TimestampTz t) {
    return t + static_cast<int64>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
}

Datum text_array(const char* const* values, int n) {
    Datum* datums = static_cast<Datum*>(palloc(sizeof(Datum) * (n > 0 ? n : 1)));
    bool* nulls = static_cast<bool*>(palloc(sizeof(bool) * (n > 0 ? n : 1)));
    for (int i = 0; i < n; i++) {
        nulls[i] = values[i] == nullptr;
        datums[i] = nulls[i] ? (Datum)0 : CStringGetTextDatum(values[i]);
    }
    int dims[1] = {n};
    int lbs[1] = {1};
    return PointerGetDatum(construct_md_array(datums, nulls, 1, dims, lbs, TEXTOID, -1, false,
                                              TYPALIGN_INT));
}

Datum int4_array(const int32* values, int n) {
    Datum* datums = static_cast<Datum*>(palloc(sizeof(Datum) * (n > 0 ? n : 1)));
    for (int i = 0; i < n; i++) datums[i] = Int32GetDatum(values[i]);
    return PointerGetDatum(construct_array(datums, n, INT4OID, 4, true, TYPALIGN_INT));
}

Datum int8_array(const int64* values, int n) {
    Datum* datums = static_cast<Datum*>(palloc(sizeof(Datum) * (n > 0 ? n : 1)));
    for (int i = 0; i < n; i++) datums[i] = Int64GetDatum(values[i]);
    return PointerGetDatum(construct_array(datums, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

char* column_text(HeapTuple tuple, TupleDesc desc, int column, int* len) {
    bool isnull = false;
    Datum d = SPI_getbinval(tuple, desc, column, &isnull);
    if (isnull) {
        if (len) *len = 0;
        return nullptr;
    }
    text* t = DatumGetTextPP(d);
    int n = VARSIZE_ANY_EXHDR(t);
    char* s = static_cast<char*>(palloc(n + 1));
    memcpy(s, VARDATA_ANY(t), n);
    s[n] = '\0';
    if (len) *len = n;
    return s;
}

int32 column_int4(HeapTuple tuple, TupleDesc desc, int column) {
    bool isnull = false;
    Datum d = SPI_getbinval(tuple, desc, column, &isnull);
    return isnull ? 0 : DatumGetInt32(d);
}

// outbox.claim()'s columns; outbox.claimed() adds the endpoint after them.
constexpr int kClaimColumns = 8;

// Reads the `n` claimed rows of SPI_tuptable. Rows without an endpoint
// column (outbox.claim) are of `endpoint_id`.
int read_claimed(int n, int32 endpoint_id, MemoryContext out, ClaimedRow** rows) {
    MemoryContext old = MemoryContextSwitchTo(out);
    *rows = static_cast<ClaimedRow*>(palloc0(sizeof(ClaimedRow) * (n > 0 ? n : 1)));
    TupleDesc desc = SPI_tuptable->tupdesc;
    bool has_endpoint = desc->natts > kClaimColumns;
    for (int i = 0; i < n; i++) {
        HeapTuple tuple = SPI_tuptable->vals[i];
        ClaimedRow& row = (*rows)[i];
        row.event_id = SPI_getvalue(tuple, desc, 1);  // uuid as text
        row.attempt = column_int4(tuple, desc, 2);
        row.topic = column_text(tuple, desc, 3, nullptr);
        row.payload = column_text(tuple, desc, 4, &row.payload_len);
        row.header_lines = column_text(tuple, desc, 5, nullptr);
        bool isnull = true;
        Datum created = SPI_getbinval(tuple, desc, 6, &isnull);
        row.created_at = isnull ? GetCurrentTimestamp() : DatumGetTimestampTz(created);
        row.key = column_text(tuple, desc, 7, nullptr);
        row.endpoint_id = has_endpoint ? column_int4(tuple, desc, kClaimColumns + 1) : endpoint_id;
    }
    MemoryContextSwitchTo(old);
    return n;
}


}  // namespace

int unpark_heads() {
    execute(unpark_plan, nullptr, nullptr, SPI_OK_SELECT);
    bool isnull = true;
    Datum moved = result_value(1, &isnull);
    return isnull ? 0 : DatumGetInt32(moved);
}

int dispatch_events(int max_events, bool include_default, int lease_ms, const int32* lease_endpoints,
                    const int32* lease_limits, int n_lease, MemoryContext out, ClaimedRow** leased, int* n_leased) {
    Datum values[5] = {Int32GetDatum(max_events), BoolGetDatum(include_default), Int64GetDatum(lease_ms),
                       int4_array(lease_endpoints, n_lease), int4_array(lease_limits, n_lease)};
    execute(dispatch_plan, values, nullptr, SPI_OK_SELECT);
    bool isnull = true;
    int32 dispatched = DatumGetInt32(result_value(1, &isnull));
    bool none = true;
    Datum events = result_value(2, &none);
    *n_leased = 0;
    if (none) {
        *leased = nullptr;
        return dispatched;
    }
    // The arrays live in SPI's result, which the next statement frees.
    Datum claimed_values[2] = {PointerGetDatum(PG_DETOAST_DATUM_COPY(events)),
                               PointerGetDatum(PG_DETOAST_DATUM_COPY(result_value(3, &isnull)))};
    int n = execute(claimed_plan, claimed_values, nullptr, SPI_OK_SELECT);
    *n_leased = read_claimed(n, 0, out, leased);
    return dispatched;
}


int claim_deliveries(int32 endpoint_id, int limit, int lease_ms, int followers, MemoryContext out,
                     ClaimedRow** rows) {
    Datum values[4] = {Int32GetDatum(endpoint_id), Int32GetDatum(limit), Int64GetDatum(lease_ms),
                       Int32GetDatum(followers)};
    int n = execute(claim_plan, values, nullptr, SPI_OK_SELECT);
    return read_claimed(n, endpoint_id, out, rows);
}

void record_results(const ResultRow* rows, int count) {
    if (count == 0) return;
    const char** ids = static_cast<const char**>(palloc(sizeof(char*) * count));
    const char** states = static_cast<const char**>(palloc(sizeof(char*) * count));
    const char** errors = static_cast<const char**>(palloc(sizeof(char*) * count));
    const char** responses = static_cast<const char**>(palloc(sizeof(char*) * count));
    int32* endpoints = static_cast<int32*>(palloc(sizeof(int32) * count));
    int32* attempts = static_cast<int32*>(palloc(sizeof(int32) * count));
    int32* statuses = static_cast<int32*>(palloc(sizeof(int32) * count));
    int64* retry = static_cast<int64*>(palloc(sizeof(int64) * count));
    int64* durations = static_cast<int64*>(palloc(sizeof(int64) * count));
    int64* started = static_cast<int64*>(palloc(sizeof(int64) * count));
    for (int i = 0; i < count; i++) {
        ids[i] = rows[i].event_id;
        states[i] = rows[i].state;
        errors[i] = rows[i].error;
        responses[i] = rows[i].response;
        endpoints[i] = rows[i].endpoint_id;
        attempts[i] = rows[i].attempt;
        statuses[i] = rows[i].status;
        retry[i] = rows[i].retry_in_ms;
        durations[i] = rows[i].duration_us;
        started[i] = unix_us(rows[i].started_at);
    }
    Datum values[10] = {text_array(ids, count),      int4_array(endpoints, count),
                        int4_array(attempts, count), text_array(states, count),
                        int8_array(retry, count),    int4_array(statuses, count),
                        text_array(errors, count),   int8_array(durations, count),
                        text_array(responses, count), int8_array(started, count)};
    execute(record_plan, values, nullptr, SPI_OK_SELECT);
}

void release_claims(const ResultRow* rows, int count, bool never_sent) {
    if (count == 0) return;
    const char** ids = static_cast<const char**>(palloc(sizeof(char*) * count));
    int32* endpoints = static_cast<int32*>(palloc(sizeof(int32) * count));
    int32* attempts = static_cast<int32*>(palloc(sizeof(int32) * count));
    for (int i = 0; i < count; i++) {
        ids[i] = rows[i].event_id;
        endpoints[i] = rows[i].endpoint_id;
        attempts[i] = rows[i].attempt;
    }
    Datum values[4] = {text_array(ids, count), int4_array(endpoints, count),
                       int4_array(attempts, count), BoolGetDatum(never_sent)};
    execute(release_plan, values, nullptr, SPI_OK_UPDATE);
}

int64 ms_until_next_due() {
    execute(next_due_plan, nullptr, nullptr, SPI_OK_SELECT);
    bool isnull = true;
    Datum ms = result_value(1, &isnull);
    return isnull ? -1 : std::max<int64>(DatumGetInt64(ms), 0);
}

char* endpoints_version(MemoryContext out) {
    execute(endpoints_version_plan, nullptr, nullptr, SPI_OK_SELECT);
    MemoryContext old = MemoryContextSwitchTo(out);
    char* version = column_text(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, nullptr);
    MemoryContextSwitchTo(old);
    return version;
}

int load_endpoints(MemoryContext out, EndpointRow** rows) {
    int n = execute(load_endpoints_plan, nullptr, nullptr, SPI_OK_SELECT);
    MemoryContext old = MemoryContextSwitchTo(out);
    *rows = static_cast<EndpointRow*>(palloc0(sizeof(EndpointRow) * (n > 0 ? n : 1)));
    TupleDesc desc = SPI_tuptable->tupdesc;
    for (int i = 0; i < n; i++) {
        HeapTuple tuple = SPI_tuptable->vals[i];
        EndpointRow& row = (*rows)[i];
        bool isnull = false;
        row.id = column_int4(tuple, desc, 1);
        row.name = column_text(tuple, desc, 2, nullptr);
        row.url = column_text(tuple, desc, 3, nullptr);
        row.header_lines = column_text(tuple, desc, 4, nullptr);
        row.timeout_ms = column_int4(tuple, desc, 5);
        Datum enabled = SPI_getbinval(tuple, desc, 6, &isnull);
        row.enabled = !isnull && DatumGetBool(enabled);
        row.secrets = column_text(tuple, desc, 7, nullptr);
        Datum change = SPI_getbinval(tuple, desc, 8, &isnull);
        row.secrets_change_in_ms = isnull ? -1 : DatumGetInt64(change);
        Datum failing = SPI_getbinval(tuple, desc, 9, &isnull);
        row.failing = !isnull && DatumGetBool(failing);
        row.max_attempts = column_int4(tuple, desc, 10);
        row.retry_base_ms = column_int4(tuple, desc, 11);
        row.retry_max_ms = column_int4(tuple, desc, 12);
        Datum rate = SPI_getbinval(tuple, desc, 13, &isnull);
        row.rate_limit = isnull ? 0 : DatumGetFloat8(rate);
        row.max_in_flight = column_int4(tuple, desc, 14);
    }
    MemoryContextSwitchTo(old);
    return n;
}

void note_endpoint_health(int32 endpoint_id, bool failing, TimestampTz since, int32 consecutive_failures,
                          const char* last_error) {
    Datum values[5] = {Int32GetDatum(endpoint_id), BoolGetDatum(failing), TimestampTzGetDatum(since),
                       Int32GetDatum(consecutive_failures), CStringGetTextDatum(last_error)};
    char nulls[5] = {' ', ' ', since == 0 ? 'n' : ' ', ' ', ' '};
    execute(note_health_plan, values, nulls, SPI_OK_SELECT);
}

void disable_endpoint(int32 endpoint_id, const char* reason) {
    Datum values[2] = {Int32GetDatum(endpoint_id), CStringGetTextDatum(reason)};
    execute(disable_endpoint_plan, values, nullptr, SPI_OK_UPDATE);
}

}  // namespace outbox::pg
