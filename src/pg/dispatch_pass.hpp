// The parts of a dispatch (queue_dispatch.cpp puts them together): the
// state of the pass, read and locked, and moved on at the end
// (dispatch_state.cpp); the events that are new (dispatch_scan.cpp).
//
// How far dispatch has come is kept as transaction snapshots (the technique
// of PgQ, tables.sql: outbox.dispatch_state). An event is new when its
// transaction is visible in the pass's target snapshot but was not in the
// done snapshot: it was in progress then (the done snapshot's xip list) or
// started after it (txid >= its xmax). Both are index lookups, so a
// long-running transaction does not make dispatch rescan old events.
// PostgreSQL-only: call through pg_call(), inside a transaction.
#pragma once

#include "pg/direct_rows.hpp"

extern "C" {
#include "access/htup.h"
#include "utils/snapshot.h"
}

namespace outbox::pg {

// A pg_snapshot value, read in place (its layout is xid8funcs.c's, which
// is what tables store).
struct SnapshotView {
    uint64 xmin = 0;
    uint64 xmax = 0;
    uint32 nxip = 0;
    const uint64* xip = nullptr;  // ascending

    static SnapshotView of(Datum snapshot);
    // pg_visible_in_snapshot(): committed or aborted before it was taken.
    bool sees(uint64 txid) const;
};

// The pass a dispatch works on.
struct Pass {
    Datum done = 0;  // pg_snapshot; 0: nothing dispatched yet
    Datum target = 0;  // pg_snapshot: what this pass dispatches up to
    uint64 cursor_txid = 0;  // the last event of the pass dispatched so far
    int64 cursor_seq = 0;
    uint64 from_txid = 0;  // where the scan of new transactions starts
    int64 from_seq = 0;
    bool restored = false;  // a restore left events to place (restore.sql)
    Snapshot snapshot = nullptr;  // taken after the lock: sees all the target does
};

enum class PassLock { Nothing, Busy, Locked };

// Reads the state; when an event may be new, locks it (SKIP LOCKED: Busy
// when another dispatcher holds it) and fills `pass`, opened in `state`.
// Nothing new: no event at or after the done snapshot's xmax (one probe at
// the end of events_dispatch) and none of the transactions it saw in
// progress has ended; then nothing is locked or written.
PassLock lock_pass(DirectTable& state, Relation events, Relation events_dispatch, Pass* pass);

// Takes the pass's snapshot (after the lock, and after restored events are
// placed) and, for a new pass, its target: what is visible now. Sets where
// the scan of new transactions starts: after the cursor but not before the
// done snapshot's xmax.
void start_pass(Pass* pass);

// Moves the state on: a batch of `n` events short of `max_events`
// completes the pass (everything visible in the target is dispatched); a
// full one leaves the cursor at its last event.
void move_pass_on(DirectTable& state, const Pass& pass, int n, int max_events, uint64 last_txid, int64 last_seq);

// One new event: its row, copied.
struct NewEvent {
    HeapTuple tuple;
    uint64 txid;
    int64 seq;
};

// Up to `max_events` new events of the pass, in (txid, seq) order.
int scan_new_events(Relation events, Relation events_dispatch, const Pass& pass, int max_events, NewEvent** out);

// An enabled endpoint as dispatch routes to it.
struct Route {
    int32 id;
    const char* name;
    Datum* topics;  // text patterns
    int ntopics;
    Datum filter;   // jsonpath; 0: none
    int64 filter_errors = 0;  // events the filter failed on, in this batch
    bool callback = false;    // it names a callback (on_result)
};

// The enabled endpoints `snapshot` sees, the default one (0) only when
// `include_default` (dispatch_routes.cpp).
int read_routes(Snapshot snapshot, bool include_default, Route** out);

// A delivery to make: event `event` of the batch to endpoint `endpoint`.
struct Delivery {
    int event;
    int32 endpoint;
    int64 seq;
    Datum key;  // text; 0: unkeyed
    bool callback = false;  // the event or the endpoint names a callback
    bool parked = false;
    bool leased = false;
    bool made = false;  // inserted (not already there)
};

// Each event to every route whose topic patterns match (an operational
// event not to the endpoint it is about) and whose filter it passes; a
// filter that fails on it is no match, counted in the route.
int route_events(const NewEvent* events, int n, TupleDesc desc, Route* routes, int nroutes, Delivery** out);

}  // namespace outbox::pg
