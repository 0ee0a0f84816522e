// The outbox.* settings (see DESIGN.md). Plain globals, as PostgreSQL's GUC
// machinery wants them; the worker copies them into C++ structures on start
// and on every SIGHUP (settings.cpp).
#pragma once

extern "C" {
#include "postgres.h"
#include "nodes/pg_list.h"
}

namespace outbox::pg {

constexpr int kMaxWorkers = 32;  // per database

extern char* guc_database;
extern int guc_workers;
extern int guc_max_workers;
extern bool guc_paused;
extern char* guc_url;
extern char* guc_secret;
extern char* guc_allowed_networks;
extern char* guc_ca_file;
extern int guc_batch_size;
extern int guc_max_in_flight;
extern int guc_request_timeout_ms;
extern int guc_connect_timeout_ms;
extern int guc_poll_interval_ms;
extern int guc_max_attempts;
extern int guc_retry_base_ms;
extern int guc_retry_max_ms;
extern int guc_lease_ms;
extern int guc_retention_s;
extern int guc_dead_retention_s;
extern int guc_max_payload_size;
extern int guc_max_reply_size;
extern int guc_max_response_size;      // bytes of a response body kept
extern int guc_callback_max_attempts;  // calls of a failing callback before it is dead
extern char* guc_channel;
extern bool guc_notify_on_enqueue;
extern int guc_log_attempts;  // LogAttempts
extern int guc_attempt_retention_s;
extern char* guc_traceparent;  // W3C trace context for this transaction's events; empty: none
extern char* guc_tracestate;

// outbox.log_attempts: which attempts outbox.attempts keeps.
enum LogAttempts { kLogAttemptsNone, kLogAttemptsFailures, kLogAttemptsAll };

// outbox.database as a list of names (palloc'd char*, in the current
// memory context); NIL when it is empty: every database with the extension.
List* served_database_names();

// Defines every outbox.* GUC. Called from _PG_init, preloaded or not.
void define_gucs();

}  // namespace outbox::pg
