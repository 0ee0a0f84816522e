// Keeps the plans of the queue's statements in step with the queue's size.
// PostgreSQL-only (call through pg_call, inside a worker transaction).
#pragma once

namespace outbox::pg {

// When outbox.events or outbox.deliveries has at least doubled in size since
// the plans that use it were made, makes every session re-plan them.
void replan_if_grown();

}  // namespace outbox::pg
