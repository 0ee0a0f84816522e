// What the launcher and the workers wait for, as pg_stat_activity shows it:
// custom wait events on servers that have them (17+), "Extension" before.
// Each returns the wait_event_info to pass to WaitLatch / WaitEventSetWait;
// the first call registers the name and may ereport(ERROR) (call it through
// pg_call() from C++ code).
#pragma once

extern "C" {
#include "postgres.h"
}

namespace outbox::pg {

uint32 wait_event_launcher_main();  // OutboxLauncherMain: between checks of the workers
uint32 wait_event_worker_idle();    // OutboxWorkerIdle: no request in flight, waiting for work
uint32 wait_event_worker_http();    // OutboxWorkerHttp: waiting on webhook requests in flight
uint32 wait_event_hold();           // OutboxHoldDatabase: a DROP/RENAME waiting for a database's workers to stop

}  // namespace outbox::pg
