// A queue table in a B-tree keeps a trail of dead index entries behind its
// head: every delivery that is claimed and recorded leaves one in
// deliveries_due where it was due, and a claim, which reads that index in
// due order, walks over all of them until VACUUM removes them. After a drain
// of 100,000 events an empty claim read 882 pages (1 ms, 2 ms per round),
// which doubled commit-to-receipt latency for the minute or more until
// autovacuum came round. So once a large drain is over, worker 0 starts a
// short-lived background worker that runs VACUUM outbox.deliveries (a
// VACUUM cannot run inside the worker's own transactions, and should not
// hold up its deliveries). PostgreSQL-only: call through pg_call().
#pragma once

extern "C" {
#include "postgres.h"
}

namespace outbox::pg {

// Dead rows of outbox.deliveries, as the statistics know them (needs a
// worker transaction).
int64 deliveries_dead_tuples();

// Starts the vacuum worker for the current database, unless the last one is
// still running. Returns whether one was started.
bool start_deliveries_vacuum();

// Stops the vacuum worker this process started, if it runs (the worker is
// leaving: a DROP DATABASE may be waiting for the database to be free).
void stop_deliveries_vacuum();

}  // namespace outbox::pg
