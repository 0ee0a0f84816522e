// The settings of a worker's own session, made once after it connects.
#pragma once

namespace outbox::pg {

// Sets the worker's session up (PostgreSQL-only: call through pg_call).
void set_up_worker_session();

}  // namespace outbox::pg
