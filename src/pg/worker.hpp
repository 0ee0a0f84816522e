#pragma once

extern "C" {
#include "postgres.h"
}

// Background worker entry points, looked up by name by the postmaster.
extern "C" PGDLLEXPORT void outbox_worker_main(Datum arg);
extern "C" PGDLLEXPORT void outbox_launcher_main(Datum arg);
