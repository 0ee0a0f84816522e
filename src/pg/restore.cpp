// The restore trigger of outbox.events (restore.sql says why rows loaded by
// a restore must be placed): rows that enqueue() writes pass untouched,
// every other row gets the txid outbox.restored_txid() gives it.
//
// Plain PostgreSQL code, no C++ objects: errors simply propagate.
#include "pg/enqueue.hpp"
#include "pg/plan.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
}

namespace outbox::pg {

namespace {

Plan restored_txid_plan{"SELECT outbox.restored_txid($1, $2)", 2, {XID8OID, INT8OID}, nullptr};

Datum column(HeapTuple row, TupleDesc desc, const char* name, int* attnum) {
    *attnum = SPI_fnumber(desc, name);
    bool isnull = true;
    Datum value = SPI_getbinval(row, desc, *attnum, &isnull);
    if (isnull) ereport(ERROR, (errcode(ERRCODE_NOT_NULL_VIOLATION), errmsg("outbox.events.%s must not be null", name)));
    return value;
}

}  // namespace

}  // namespace outbox::pg

extern "C" {
PG_FUNCTION_INFO_V1(outbox_restore_event);
Datum outbox_restore_event(PG_FUNCTION_ARGS) {
    using namespace outbox::pg;
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("outbox.restore_event() may only be called as a trigger")));
    TriggerData* trigger = reinterpret_cast<TriggerData*>(fcinfo->context);
    HeapTuple row = trigger->tg_trigtuple;
    if (enqueue_writing()) return PointerGetDatum(row);

    TupleDesc desc = RelationGetDescr(trigger->tg_relation);
    int txid_attnum = 0, seq_attnum = 0;
    Datum args[2] = {column(row, desc, "txid", &txid_attnum), column(row, desc, "seq", &seq_attnum)};
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    execute(restored_txid_plan, args, nullptr, SPI_OK_SELECT);
    bool isnull = true;
    Datum placed = result_value(1, &isnull);  // xid8 is passed by value
    SPI_finish();
    bool nulls[1] = {false};
    return PointerGetDatum(heap_modify_tuple_by_cols(row, desc, 1, &txid_attnum, &placed, nulls));
}
}
