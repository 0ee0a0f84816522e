// The new events of a pass, by index (dispatch_pass.hpp): the transactions
// the done snapshot saw in progress, one index lookup each, then the range
// of those that started after it, read in order from where the pass
// stands and left as soon as the batch is full.
#include "pg/compat.hpp"
#include "pg/dispatch_pass.hpp"

#include "pg/queue_tables.hpp"

extern "C" {
#include "access/genam.h"
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "utils/xid8.h"
}

namespace outbox::pg {

namespace {

bool after(uint64 txid, int64 seq, uint64 than_txid, int64 than_seq) {
    return txid > than_txid || (txid == than_txid && seq > than_seq);
}

// A scan of events_dispatch from `key` on; each row visible in the pass's
// snapshot goes to `take`, until it returns false.
template <typename Take>
void scan(Relation events, Relation index, const Pass& pass, ScanKey key, TupleTableSlot* slot, Take&& take) {
    IndexScanDesc s = compat::index_scan(events, index, pass.snapshot, 1);
    index_rescan(s, key, 1, nullptr, 0);
    while (index_getnext_slot(s, ForwardScanDirection, slot)) {
        bool null = false;
        uint64 txid = U64FromFullTransactionId(DatumGetFullTransactionId(column(slot, events::kTxid, &null)));
        int64 seq = DatumGetInt64(column(slot, events::kSeq, &null));
        if (!take(txid, seq)) break;
    }
    index_endscan(s);
}

}  // namespace

int scan_new_events(Relation events, Relation events_dispatch, const Pass& pass, int max_events, NewEvent** out) {
    SnapshotView target = SnapshotView::of(pass.target);
    TupleTableSlot* slot = MakeSingleTupleTableSlot(RelationGetDescr(events), table_slot_callbacks(events));
    NewEvent* found = static_cast<NewEvent*>(palloc(sizeof(NewEvent) * (max_events > 0 ? max_events : 1)));
    int n = 0;
    auto keep = [&](uint64 txid, int64 seq) {
        found[n++] = NewEvent{ExecCopySlotHeapTuple(slot), txid, seq};
        return n < max_events;
    };
    ScanKeyData key;
    // Transactions in progress when the done snapshot was taken: new once
    // the target sees them (ascending, all below its xmax, so before the
    // range below).
    if (pass.done != 0 && max_events > 0) {
        SnapshotView seen = SnapshotView::of(pass.done);
        for (uint32 i = 0; i < seen.nxip && n < max_events; i++) {
            uint64 txid = seen.xip[i];
            if (!target.sees(txid)) continue;
            index_key(&key, events_dispatch, 1, BTEqualStrategyNumber,
                      FullTransactionIdGetDatum(FullTransactionIdFromU64(txid)));
            scan(events, events_dispatch, pass, &key, slot, [&](uint64 t, int64 seq) {
                return !after(t, seq, pass.cursor_txid, pass.cursor_seq) || keep(t, seq);
            });
        }
    }
    // Transactions that started after it, from where the pass stands, up
    // to the target's xmax, those the target sees.
    if (n < max_events) {
        index_key(&key, events_dispatch, 1, BTGreaterEqualStrategyNumber,
                  FullTransactionIdGetDatum(FullTransactionIdFromU64(pass.from_txid)));
        scan(events, events_dispatch, pass, &key, slot, [&](uint64 t, int64 seq) {
            if (!after(t, seq, pass.from_txid, pass.from_seq)) return true;
            if (t >= target.xmax) return false;
            return !target.sees(t) || keep(t, seq);
        });
    }
    ExecDropSingleTupleTableSlot(slot);
    *out = found;
    return n;
}

}  // namespace outbox::pg
