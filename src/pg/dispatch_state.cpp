// The state of a dispatch pass: read, locked, moved on (dispatch_pass.hpp).
#include "pg/compat.hpp"
#include "pg/dispatch_pass.hpp"

#include "pg/queue_tables.hpp"

#include <cstdlib>

extern "C" {
#include "access/genam.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "utils/fmgrprotos.h"
#include "utils/snapmgr.h"
#include "utils/xid8.h"
}

namespace outbox::pg {

namespace {

// xid8funcs.c's pg_snapshot.
struct PgSnapshot {
    int32 vl_len_;
    uint32 nxip;
    FullTransactionId xmin;
    FullTransactionId xmax;
    FullTransactionId xip[FLEXIBLE_ARRAY_MEMBER];
};

int compare_u64(const void* a, const void* b) {
    uint64 x = *static_cast<const uint64*>(a), y = *static_cast<const uint64*>(b);
    return x < y ? -1 : x > y ? 1 : 0;
}

uint64 txid_of(Datum d) { return U64FromFullTransactionId(DatumGetFullTransactionId(d)); }

// pg_current_snapshot() as `snapshot` sees it.
Datum current_snapshot(Snapshot snapshot) {
    PushActiveSnapshot(snapshot);
    Datum current = DirectFunctionCall1(pg_current_snapshot, (Datum)0);
    PopActiveSnapshot();
    return current;
}

// Whether an event may be new: a pass under way, events to place after a
// restore, nothing dispatched yet, an event at or after the done
// snapshot's xmax, or a transaction it saw in progress that has ended.
bool may_be_new(DirectTable& state, Relation events, Relation events_dispatch, Snapshot snapshot) {
    bool done_null, target_null, restored_null;
    Datum done = column(state.current, dispatch_state::kDoneSnapshot, &done_null);
    column(state.current, dispatch_state::kTargetSnapshot, &target_null);
    column(state.current, dispatch_state::kRestoredAt, &restored_null);
    if (!target_null || !restored_null || done_null) return true;
    SnapshotView seen = SnapshotView::of(done);
    TupleTableSlot* slot = MakeSingleTupleTableSlot(RelationGetDescr(events), table_slot_callbacks(events));
    IndexScanDesc scan = compat::index_scan(events, events_dispatch, snapshot, 0);
    index_rescan(scan, nullptr, 0, nullptr, 0);
    bool fresh = false;
    if (index_getnext_slot(scan, BackwardScanDirection, slot)) {
        bool null = false;
        fresh = txid_of(column(slot, events::kTxid, &null)) >= seen.xmax;
    }
    index_endscan(scan);
    ExecDropSingleTupleTableSlot(slot);
    if (fresh || seen.nxip == 0) return fresh;
    SnapshotView now = SnapshotView::of(current_snapshot(snapshot));
    for (uint32 i = 0; i < seen.nxip; i++)
        if (now.sees(seen.xip[i])) return true;
    return false;
}

// The new state of the pass.
struct Progress {
    const Pass* pass;
    bool complete;
    uint64 last_txid;
    int64 last_seq;
};

bool write_progress(DirectTable& t, void* arg) {
    const Progress& p = *static_cast<const Progress*>(arg);
    copy_current(t);
    Datum* v = t.next->tts_values;
    bool* n = t.next->tts_isnull;
    if (p.complete) {
        v[dispatch_state::kDoneSnapshot - 1] = p.pass->target;
        n[dispatch_state::kDoneSnapshot - 1] = false;
        n[dispatch_state::kTargetSnapshot - 1] = n[dispatch_state::kCursorTxid - 1] =
            n[dispatch_state::kCursorSeq - 1] = true;
    } else {
        v[dispatch_state::kTargetSnapshot - 1] = p.pass->target;
        v[dispatch_state::kCursorTxid - 1] = FullTransactionIdGetDatum(FullTransactionIdFromU64(p.last_txid));
        v[dispatch_state::kCursorSeq - 1] = Int64GetDatum(p.last_seq);
        n[dispatch_state::kTargetSnapshot - 1] = n[dispatch_state::kCursorTxid - 1] =
            n[dispatch_state::kCursorSeq - 1] = false;
    }
    ExecStoreVirtualTuple(t.next);
    return true;
}

}  // namespace

SnapshotView SnapshotView::of(Datum snapshot) {
    const PgSnapshot* s = reinterpret_cast<const PgSnapshot*>(PG_DETOAST_DATUM(snapshot));
    SnapshotView view;
    view.xmin = U64FromFullTransactionId(s->xmin);
    view.xmax = U64FromFullTransactionId(s->xmax);
    view.nxip = s->nxip;
    view.xip = reinterpret_cast<const uint64*>(s->xip);
    return view;
}

bool SnapshotView::sees(uint64 txid) const {
    if (txid < xmin) return true;
    if (txid >= xmax) return false;
    return bsearch(&txid, xip, nxip, sizeof(uint64), compare_u64) == nullptr;
}

PassLock lock_pass(DirectTable& state, Relation events, Relation events_dispatch, Pass* pass) {
    open_dispatch_state(state);
    Snapshot snapshot = RegisterSnapshot(GetTransactionSnapshot());
    TableScanDesc scan = table_beginscan(state.rel, snapshot, 0, nullptr);
    bool found = table_scan_getnextslot(scan, ForwardScanDirection, state.current);
    table_endscan(scan);
    if (!found)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("outbox.dispatch_state is empty"),
                        errhint("Reinstall the extension; its one row says how far dispatch has come.")));
    if (!may_be_new(state, events, events_dispatch, snapshot)) {
        UnregisterSnapshot(snapshot);
        return PassLock::Nothing;
    }
    // FOR UPDATE SKIP LOCKED: the row lock serializes dispatchers.
    TM_FailureData failure;
    ItemPointerData tid = state.current->tts_tid;
    int flags = IsolationUsesXactSnapshot() ? 0 : TUPLE_LOCK_FLAG_FIND_LAST_VERSION;
    TM_Result locked = table_tuple_lock(state.rel, &tid, snapshot, state.current, state.estate->es_output_cid,
                                        LockTupleExclusive, LockWaitSkip, flags, &failure);
    UnregisterSnapshot(snapshot);
    if (locked == TM_WouldBlock) return PassLock::Busy;
    if (locked == TM_Updated)
        ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                        errmsg("could not serialize access due to concurrent update")));
    if (locked != TM_Ok) elog(ERROR, "outbox: could not lock outbox.dispatch_state (%d)", static_cast<int>(locked));
    bool null = false;
    pass->done = column(state.current, dispatch_state::kDoneSnapshot, &null);
    if (null) pass->done = 0;
    pass->target = column(state.current, dispatch_state::kTargetSnapshot, &null);
    if (null) pass->target = 0;
    Datum txid = column(state.current, dispatch_state::kCursorTxid, &null);
    pass->cursor_txid = null || pass->target == 0 ? 0 : txid_of(txid);
    Datum seq = column(state.current, dispatch_state::kCursorSeq, &null);
    pass->cursor_seq = null || pass->target == 0 ? 0 : DatumGetInt64(seq);
    column(state.current, dispatch_state::kRestoredAt, &null);
    pass->restored = !null;
    return PassLock::Locked;
}

void start_pass(Pass* pass) {
    pass->snapshot = RegisterSnapshot(GetTransactionSnapshot());
    if (pass->target == 0) pass->target = current_snapshot(pass->snapshot);  // a new pass, to what is visible now
    pass->from_txid = pass->cursor_txid;
    pass->from_seq = pass->cursor_seq;
    if (pass->done != 0) {
        // After the cursor but not before the done snapshot's xmax. (seq
        // starts at 1: "> (xmax, 0)" is "txid >= xmax".)
        uint64 xmax = SnapshotView::of(pass->done).xmax;
        if (pass->from_txid < xmax) {
            pass->from_txid = xmax;
            pass->from_seq = 0;
        }
    }
}

void move_pass_on(DirectTable& state, const Pass& pass, int n, int max_events, uint64 last_txid, int64 last_seq) {
    Progress progress{&pass, n < max_events, last_txid, last_seq};
    if (!rewrite_current(state, pass.snapshot, write_progress, &progress))
        elog(ERROR, "outbox: could not write outbox.dispatch_state");
}

}  // namespace outbox::pg
