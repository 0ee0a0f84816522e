// Callbacks (README, "Callbacks"): the function an event or its endpoint
// names (on_result, callback_name.hpp), called once when a delivery ends --
// delivered or dead -- in the transaction that records the end, with an
// outbox.delivery_result. Each runs as the role that named it, with
// search_path pg_catalog, pg_temp, as a security-restricted operation (as
// PostgreSQL runs index functions for maintenance), in a subtransaction of
// its own: one that fails is rolled back alone, the delivery's end is kept,
// and the worker calls it again later (call_due_callbacks), until it
// succeeds or has failed outbox.callback_max_attempts times (then it is
// dead, announced as outbox.callback.dead). While a keyed delivery's
// callback has not committed, the next delivery of its key waits.
// PostgreSQL-only: call through pg_call(), inside a transaction, with SPI
// connected.
#pragma once

extern "C" {
#include "postgres.h"
#include "utils/uuid.h"
}

namespace outbox::pg {

// A delivery whose callback is to be called; its row says how it ended.
struct CallbackCall {
    const pg_uuid_t* event_id;
    int32 endpoint_id;
    const char* error = nullptr;  // set when the callback failed (and was rolled back)
};

// Calls the callbacks of `calls`, in seq order, each as described above;
// sets the error of those that failed. A delivery whose event and
// endpoint no longer name a callback is left alone.
void call_callbacks(CallbackCall* calls, int n);

// Writes how `calls` went (callback_pass.cpp): done, or pending again after
// a backoff (outbox.retry_base doubling per call, up to outbox.retry_max),
// or dead. `counted`: callback_attempts counts this call already (recording
// counts it with the row); `only_failed`: the others are written already.
void note_callbacks(const CallbackCall* calls, int n, bool counted, bool only_failed);

// The worker's due-callback pass: calls up to `limit` callbacks whose time
// has come (FOR UPDATE SKIP LOCKED: one worker each), writes how they went,
// and moves up the keys they held. Returns how many it called.
int call_due_callbacks(int limit);

}  // namespace outbox::pg
