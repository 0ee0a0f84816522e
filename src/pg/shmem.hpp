// Shared memory: where committing backends find the workers' latches.
#pragma once

extern "C" {
#include "postgres.h"
#include "storage/latch.h"
}

namespace outbox::pg {

// Registers the shared memory request and startup hooks (preload only).
void install_shmem_hooks();

// Worker slot registration: a worker publishes its latch while it runs.
void publish_worker_latch(int slot, Latch* latch);
void withdraw_worker_latch(int slot);

// Sets every running worker's latch. Safe in any backend; a no-op when the
// library was not preloaded.
void wake_workers();

// Launcher bookkeeping, so that "database does not exist" is logged once per
// postmaster lifetime rather than at every launcher restart.
bool note_missing_database_once();
void clear_missing_database_note();

}  // namespace outbox::pg
