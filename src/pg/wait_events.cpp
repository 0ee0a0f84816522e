#include "pg/wait_events.hpp"

#include "pg/compat.hpp"

namespace outbox::pg {

namespace {

// Registered once per process. Not a function-local static: an ereport()
// from the registration would longjmp out of its guarded initialisation.
uint32 registered(uint32& id, const char* name) {
    if (id == 0) id = compat::new_wait_event(name);
    return id;
}

uint32 launcher_main, worker_idle, worker_http, hold;

}  // namespace

uint32 wait_event_launcher_main() { return registered(launcher_main, "OutboxLauncherMain"); }
uint32 wait_event_worker_idle() { return registered(worker_idle, "OutboxWorkerIdle"); }
uint32 wait_event_worker_http() { return registered(worker_http, "OutboxWorkerHttp"); }
uint32 wait_event_hold() { return registered(hold, "OutboxHoldDatabase"); }

}  // namespace outbox::pg
