// Shared memory: where committing backends find the workers' latches, and
// where the workers share the pauses endpoints ask for (429/503 Retry-After).
#pragma once

extern "C" {
#include "postgres.h"
#include "datatype/timestamp.h"
#include "storage/latch.h"
}

namespace outbox::pg {

// Registers the shared memory request and startup hooks (preload only).
void install_shmem_hooks();

// Worker slot registration: a worker publishes its latch while it runs.
void publish_worker_latch(int slot, Latch* latch);
void withdraw_worker_latch(int slot);

// Sets the latch of one running worker, chosen by the caller's pid so that
// many producers spread over the workers. One is enough to dispatch and
// claim what a commit made visible; a worker that finds more than it can
// take wakes the others (wake_other_workers). Safe in any backend; a no-op
// when the library was not preloaded.
void wake_a_worker();

// Sets the latches of every running worker but `slot`.
void wake_other_workers(int slot);

// An endpoint that asked for a pause, until when.
struct EndpointPause {
    int32 endpoint_id;
    TimestampTz until;
};
constexpr int kMaxEndpointPauses = 64;

// Records (or extends) a pause for every worker to see. With more paused
// endpoints than kMaxEndpointPauses, the pause ending first is forgotten
// (its own worker still keeps it).
void share_endpoint_pause(int32 endpoint_id, TimestampTz until);

// Copies the pauses that have not ended into `out` (kMaxEndpointPauses
// entries); returns how many.
int shared_endpoint_pauses(EndpointPause* out);

// Launcher bookkeeping, so that "database does not exist" is logged once per
// postmaster lifetime rather than at every launcher restart.
bool note_missing_database_once();
void clear_missing_database_note();

}  // namespace outbox::pg
