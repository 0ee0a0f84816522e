// The trace context of the enqueuing transaction (outbox.traceparent,
// outbox.tracestate), added to an event's headers. PostgreSQL-only code:
// call through pg_call().
#pragma once

extern "C" {
#include "postgres.h"
#include "utils/jsonb.h"
}

namespace outbox::pg {

// True when outbox.traceparent is set for this transaction (or session).
bool trace_context_set();

// `headers` (nullptr: none) with traceparent and tracestate added, unless the
// headers name them already (in any case): an explicit header wins.
Jsonb* with_trace_context(Jsonb* headers);

}  // namespace outbox::pg
