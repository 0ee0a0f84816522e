// Per-endpoint limits shared by all workers of a database: rate_limit (requests per
// second, spaced evenly: core/rate.hpp) and max_in_flight (requests at once,
// counted per worker so that a worker that died leaves nothing behind once
// it is restarted). PostgreSQL-only code: call through pg_call().
#pragma once

extern "C" {
#include "postgres.h"
#include "datatype/timestamp.h"
}

namespace outbox::pg {

// Shared memory: the size to request, and set-up in the startup hook.
Size limits_shmem_size();
void limits_request_lock();
void limits_shmem_init();

// May worker `slot` start a request to `endpoint_id` now? `rate` <= 0 and
// `max_in_flight` <= 0 mean no limit. If so the request is counted (end it
// with limits_finish); if not, *retry_in_us says when to ask again (0: when
// a request of another worker finishes).
bool limits_try_start(int slot, int32 endpoint_id, double rate, int32 max_in_flight, int64* retry_in_us);

// A request that limits_try_start() let start has finished.
void limits_finish(int slot, int32 endpoint_id);

// Forgets every request worker `slot` of this database had started (its
// start after a crash, its clean exit).
void limits_forget_worker(int slot);

// The limits of `database` go (dropped, or its extension dropped).
void limits_forget_database(Oid database);

}  // namespace outbox::pg
