#pragma once

namespace outbox::pg {

// True (once) when this transaction enqueued events: the commit callback then
// wakes the workers. Also cleared on abort and PREPARE.
bool take_wake_on_commit();

}  // namespace outbox::pg
