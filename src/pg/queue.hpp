// The worker's statements: dispatch, claim, record, next due time, endpoints.
// Prepared once per process and kept (plan.hpp), schema-qualified, run with
// the worker's fixed search_path; outbox.dispatch_and_lease(), claim(),
// record() and unpark_heads() (relay.cpp) run the very same ones, so an
// external relay follows the same rules as the worker. Every function here
// is "PostgreSQL-only" (plain C data, may ereport): call it through pg_call()
// from C++, inside a transaction.
#pragma once

extern "C" {
#include "postgres.h"
#include "datatype/timestamp.h"
}

#include "pg/spi_values.hpp"

namespace outbox::pg {

// What a dispatch is asked: up to `max_events` newly visible events, the
// default endpoint included when `include_default` (outbox.url is set); and
// to lease (for `lease_ms`, attempt counted) up to lease_limits[i] of the
// deliveries it makes for endpoint lease_endpoints[i] (int4[] both) that are
// due at once, as a claim would.
struct DispatchRequest {
    int max_events;
    bool include_default;
    int64 lease_ms;
    Datum lease_endpoints;
    Datum lease_limits;
};

struct DispatchResult {
    int dispatched = 0;     // events dispatched; -1: another worker was dispatching
    int left_due = 0;       // deliveries made due at once but not leased (for a claim)
    ClaimedRow* leased = nullptr;  // in seq order, palloc'd in the context given
    int n_leased = 0;
};

// Creates the deliveries of newly visible events (queue_dispatch.cpp).
void dispatch_events(const DispatchRequest& request, MemoryContext out, DispatchResult* result);

// Claims up to `limit` due deliveries of `endpoint_id` (FOR UPDATE SKIP
// LOCKED), leasing them for `lease_ms` and counting the attempt. A keyed
// delivery is claimed only when no earlier delivery of the same key and
// endpoint is still pending; with up to `followers` (in all, shared among
// the keys) of the deliveries that follow it in its key: its pipeline. Rows
// are in seq order, palloc'd in `out`; a key's first row is its head
// (queue_claim.cpp).
int claim_deliveries(int32 endpoint_id, int limit, int64 lease_ms, int followers, MemoryContext out,
                     ClaimedRow** rows);

// One attempt's result, ready to be written.
struct ResultRow {
    const pg_uuid_t* event_id;
    int32 endpoint_id;
    int32 attempt;
    const char* state;     // "pending" (retry), "delivered" or "dead"
    int64 retry_in_ms;     // for "pending": delay until the next attempt
    int32 status;          // 0: no HTTP response
    const char* error;     // nullptr when none
    int64 duration_us;
    const char* response;  // nullptr when empty
    TimestampTz started_at;  // when the request started
    bool started_known = true;   // false: now
    bool duration_known = true;  // false: NULL
    // The response's headers, kept for a callback: "name: value\n" lines
    // (the worker's) or a jsonb object (outbox.record()'s); neither: none.
    const char* header_lines = nullptr;
    Datum headers = 0;
    // Ended by outbox.discard(), not by an attempt: its last attempt's
    // status and response stay, and no attempt is logged.
    bool discarded = false;
};

// Writes results (queue_results.cpp); returns how many were written. A
// delivery that ends (delivered, dead) calls its callback, if it has one,
// in this transaction (callbacks.hpp). Rows
// whose attempt no longer matches (the lease ran out and another claimer
// took the delivery) are left alone. The next delivery of each finished
// key moves up if it is parked; each attempt is logged in outbox.attempts
// as outbox.log_attempts says; each delivery that died is announced
// (outbox.delivery.dead); endpoints failing for longer than their
// disable_after are disabled. `unblocked`, when given, counts the finished
// keys that have a pending delivery after the one that finished: what a
// claim may now find due (nothing else a result writes makes a delivery
// due at once).
int record_results(const ResultRow* rows, int count, int* unblocked = nullptr);

// Whether an attempt that ended in `state` is logged under `log_mode`.
bool logs_attempt(const char* log_mode, const char* state);

// The statements that follow recording (queue_followups.cpp): dead deliveries
// announced (uuid[], int4[]); endpoints among int4[] failing longer than
// their disable_after disabled.
void announce_dead(Datum event_ids, Datum endpoint_ids);
void disable_failing(Datum endpoint_ids);

// Makes the given claimed deliveries due again at once, so they need not
// wait for the lease: on shutdown, requests that never finished; any time,
// claims that were never sent (`never_sent`: their attempt is not counted).
// A keyed one behind an earlier pending delivery of its key is parked again
// instead (a pipeline's rest, handed back when its predecessor failed).
void release_claims(const ResultRow* rows, int count, bool never_sent);

// Moves up parked keyed deliveries that head their key: recording normally
// does this; this sweep covers a head finished while its follower was being
// dispatched. Returns how many.
int unpark_heads();

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
