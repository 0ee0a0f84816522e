// The worker's SQL: dispatch, claim, record, next due time, endpoints. Every function here
// is "PostgreSQL-only" (plain C data, may ereport) and must be called through
// pg_call(), inside a transaction opened by transaction.hpp.
#pragma once

extern "C" {
#include "postgres.h"
#include "datatype/timestamp.h"
}

namespace outbox::pg {

// One claimed delivery; strings are NUL-terminated and palloc'd in the
// memory context given to claim_deliveries().
struct ClaimedRow {
    char* event_id;      // uuid text
    int32 endpoint_id;
    int32 attempt;       // this attempt's number (already counted)
    char* topic;
    char* payload;       // JSON text, the request body
    int payload_len;
    char* header_lines;  // event headers as "name: value\n..." or nullptr
    TimestampTz created_at;  // the delivery's
    char* key;           // nullptr: unkeyed
};

// Creates the deliveries of up to `max_events` newly visible events
// (outbox.dispatch_and_lease); returns how many events it dispatched, or -1
// when another worker was dispatching. Up to lease_limits[i] of the
// deliveries it makes for endpoint lease_endpoints[i] that are due at once
// come back leased (for `lease_ms`, attempt counted) in *leased, palloc'd
// in `out`, like claimed ones.
int dispatch_events(int max_events, bool include_default, int lease_ms, const int32* lease_endpoints,
                    const int32* lease_limits, int n_lease, MemoryContext out, ClaimedRow** leased, int* n_leased);

// Moves up parked keyed deliveries that head their key (outbox.unpark_heads).
int unpark_heads();

// Claims up to `limit` due deliveries of `endpoint_id` (FOR UPDATE SKIP
// LOCKED), leasing them for `lease_ms` and counting the attempt. A keyed
// delivery is claimed only when no earlier delivery of the same key and
// endpoint is still pending; with up to `followers` of the deliveries that
// follow it in its key (its pipeline, see outbox.claim). Rows are in seq
// order; a key's first row is its head.
int claim_deliveries(int32 endpoint_id, int limit, int lease_ms, int followers, MemoryContext out,
                     ClaimedRow** rows);

// One attempt's result, ready to be written.
struct ResultRow {
    const char* event_id;  // uuid text
    int32 endpoint_id;
    int32 attempt;
    const char* state;     // "pending" (retry), "delivered" or "dead"
    int64 retry_in_ms;     // for "pending": delay until the next attempt
    int32 status;          // 0: no HTTP response
    const char* error;     // nullptr when none
    int64 duration_us;
    const char* response;  // nullptr when empty
    TimestampTz started_at;  // when the request started
};

// Writes results in one statement. Rows whose attempt no longer matches (the
// lease ran out and another claimer took the delivery) are left alone.
void record_results(const ResultRow* rows, int count);

// Makes the given claimed deliveries due again at once, so they need not
// wait for the lease: on shutdown, requests that never finished; any time,
// claims that were never sent (`never_sent`: their attempt is not counted).
// A keyed one behind an earlier pending delivery of its key is parked again
// instead (a pipeline's rest, handed back when its predecessor failed).
void release_claims(const ResultRow* rows, int count, bool never_sent);

// Milliseconds until the earliest pending delivery (of any enabled endpoint)
// that is not yet due, or -1 when there is none.
int64 ms_until_next_due();

// A cheap fingerprint of the endpoint configuration: it changes whenever an
// endpoint is created, altered, disabled, enabled, dropped or rotated.
char* endpoints_version(MemoryContext out);

// One endpoint as the worker needs it; strings palloc'd in `out`.
struct EndpointRow {
    int32 id;
    char* name;
    char* url;           // nullptr for the default endpoint (outbox.url)
    char* header_lines;  // "name: value\n..." or nullptr
    int32 timeout_ms;    // 0: outbox.request_timeout
    bool enabled;
    char* secrets;       // valid secrets, newest first, separated by spaces, or nullptr
    int64 secrets_change_in_ms;  // until the next secret expires, -1: never
    bool failing;        // failing_since is set
    int32 max_attempts;  // its retry policy; 0: the outbox.* setting
    int32 retry_base_ms;
    int32 retry_max_ms;
    double rate_limit;    // requests per second; 0: none
    int32 max_in_flight;  // across workers; 0: a fair share
};
int load_endpoints(MemoryContext out, EndpointRow** rows);

// Disables an endpoint (410 Gone), recording why.
void disable_endpoint(int32 endpoint_id, const char* reason);

// Tells that an endpoint became failing (since: its first failed attempt
// in a row) or recovered (outbox.note_endpoint_health).
void note_endpoint_health(int32 endpoint_id, bool failing, TimestampTz since, int32 consecutive_failures,
                          const char* last_error);

}  // namespace outbox::pg
