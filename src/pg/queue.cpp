// The worker's other statements: when the next retry is due, the endpoints
// (their fingerprint, and loading them), disabling one (410 Gone), telling
// an endpoint's health. Dispatch, claim and record are in queue_*.cpp.
#include "pg/queue.hpp"

#include "pg/plan.hpp"

#include <algorithm>

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

namespace outbox::pg {

namespace {

// Per endpoint, so that each lookup is the first entry of an index range.
// A failed callback's next call counts as a due time too (the
// due-callback pass runs with the claim).
constexpr const char* kNextDueSql = R"sql(
SELECT (EXTRACT(epoch FROM least(min(due.at), (
            SELECT min(c.callback_next_at) FROM outbox.deliveries AS c
            WHERE c.callback_state = 'pending' AND c.callback_next_at > now())) - clock_timestamp()) * 1000)::int8
FROM outbox.endpoints AS ep,
     LATERAL (SELECT min(d.next_attempt_at) AS at
              FROM outbox.deliveries AS d
              WHERE d.state = 'pending'
                AND d.endpoint_id = ep.id
                AND d.next_attempt_at > now()
                AND d.next_attempt_at < 'infinity') AS due
WHERE ep.enabled
)sql";

// The endpoints' functions touch updated_at when they change a secret, but a
// restore loads endpoint_secrets after endpoints (its foreign key), table by
// table: a worker that loaded the endpoints in between kept signing without
// the restored secrets. So the secrets' count and newest row count too.
constexpr const char* kEndpointsVersionSql = R"sql(
SELECT count(*)::text || '/' || coalesce(max(updated_at)::text, '') || '/' ||
       (SELECT count(*)::text || '/' || coalesce(max(s.created_at)::text, '') FROM outbox.endpoint_secrets AS s)
FROM outbox.endpoints
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

constexpr const char* kNoteHealthSql = "SELECT outbox.note_endpoint_health($1, $2, $3, $4, $5)";

Plan next_due_plan{kNextDueSql, 0, {}, nullptr};
Plan endpoints_version_plan{kEndpointsVersionSql, 0, {}, nullptr};
Plan load_endpoints_plan{kLoadEndpointsSql, 0, {}, nullptr};
Plan disable_endpoint_plan{kDisableEndpointSql, 2, {INT4OID, TEXTOID}, nullptr};
Plan note_health_plan{kNoteHealthSql, 5, {INT4OID, BOOLOID, TIMESTAMPTZOID, INT4OID, TEXTOID}, nullptr};

}  // namespace

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
