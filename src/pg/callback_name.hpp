// Naming a callback (README, "Callbacks"): enqueue(..., on_result) and
// outbox.set_endpoint_callback() turn a function's name into the function a
// delivery's end will call, checked for the role that names it, which is
// the role it will run as. Both are SECURITY INVOKER so that this role is
// the caller's; what they write, they write as the extension's owner
// (as_extension_owner), as a SECURITY DEFINER function would.
// PostgreSQL-only: call through pg_call(), inside a transaction.
#pragma once

extern "C" {
#include "postgres.h"
}

namespace outbox::pg {

// outbox.delivery_result's type.
Oid delivery_result_type();

// The function `name` ('schema.fn') stands for: one argument of type
// outbox.delivery_result, a plain function (no procedure, aggregate or
// set-returning function), not in a temporary schema, that `role` may
// execute (42501 when it may not). Returns its name in regprocedure's
// qualified form ('schema.fn(outbox.delivery_result)'), palloc'd.
char* name_callback(const char* name, Oid role);

// Runs `body(arg)` as the owner of schema outbox (the role that created
// the extension, who owns its functions), then switches back, by an error
// too. Not the function's own owner: a call that began before ALTER
// EXTENSION UPDATE made its function again would not find it.
void as_extension_owner(void (*body)(void*), void* arg);

}  // namespace outbox::pg
