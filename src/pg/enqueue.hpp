#pragma once

namespace outbox::pg {

// True (once) when this transaction enqueued events: the commit callback then
// wakes the workers. Also cleared on abort and PREPARE.
bool take_wake_on_commit();

// True while enqueue() writes its row: the restore trigger on outbox.events
// lets such rows pass untouched (restore.cpp).
bool enqueue_writing();

}  // namespace outbox::pg
