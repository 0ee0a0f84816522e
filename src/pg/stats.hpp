// The workers' per-endpoint counters in shared memory, per database (each
// process counts and reads those of its own database) (pg_stat style: kept
// by the workers as attempts finish, not by scanning history), behind
// outbox.stats: delivered, failed attempts, last success and failure, the
// current run of failures, requests in flight and commit-to-2xx latency over
// the last 5 minutes. PostgreSQL-only code: call through pg_call().
#pragma once

extern "C" {
#include "postgres.h"
#include "datatype/timestamp.h"
}

#include "core/health.hpp"

namespace outbox::pg {

// Shared memory: the size to request, and set-up in the startup hook.
Size stats_shmem_size();
void stats_request_lock();
void stats_shmem_init();

// Counts a finished attempt of `endpoint_id` at `now`; `latency_us` (on
// success) from the delivery's creation, just after its event's commit, to
// the 2xx. Returns whether the endpoint became failing or recovered, with
// the run of failures it is in (*consecutive, *since).
core::HealthChange count_endpoint_attempt(int32 endpoint_id, bool success, TimestampTz now, int64 latency_us,
                                          int32* consecutive, TimestampTz* since);

// Worker `slot` has `n` requests of `endpoint_id` claimed and not finished.
void publish_in_flight(int slot, int32 endpoint_id, int32 n);

// Worker `slot` of this database ended: none of its requests is in flight.
void stats_forget_worker(int slot);

// The counters of `database` go (dropped, or its extension dropped).
void stats_forget_database(Oid database);

// The endpoint is failing as far as the database knows (its failing_since
// survived a restart): its first success will be reported as a recovery.
void seed_endpoint_failing(int32 endpoint_id);

}  // namespace outbox::pg
