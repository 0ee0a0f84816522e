#include "pg/database_settings.hpp"

#include "pg/gucs.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_db_role_setting.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
}

namespace outbox::pg {

namespace {

// Settings are stored as "name=value", checked by the setting's own check
// when they were made (the library is preloaded in every backend). What a
// row does not set is left as it is.
void read_row(Relation rel, Snapshot snapshot, Oid database, DatabaseSettings* out) {
    ScanKeyData keys[2];
    ScanKeyInit(&keys[0], Anum_pg_db_role_setting_setdatabase, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(database));
    ScanKeyInit(&keys[1], Anum_pg_db_role_setting_setrole, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(InvalidOid));
    SysScanDesc scan = systable_beginscan(rel, DbRoleSettingDatidRolidIndexId, true, snapshot, 2, keys);
    HeapTuple tuple = systable_getnext(scan);
    bool isnull = true;
    Datum config = HeapTupleIsValid(tuple)
                       ? heap_getattr(tuple, Anum_pg_db_role_setting_setconfig, RelationGetDescr(rel), &isnull)
                       : (Datum)0;
    if (!isnull) {
        Datum* items = nullptr;
        bool* nulls = nullptr;
        int n = 0;
        deconstruct_array(DatumGetArrayTypeP(config), TEXTOID, -1, false, TYPALIGN_INT, &items, &nulls, &n);
        for (int i = 0; i < n; i++) {
            if (nulls[i]) continue;
            char* name = nullptr;
            char* value = nullptr;
            ParseLongOption(TextDatumGetCString(items[i]), &name, &value);
            if (value == nullptr) continue;
            int workers = 0;
            bool paused = false;
            if (strcmp(name, "outbox.workers") == 0 && parse_int(value, &workers, 0, nullptr))
                out->workers = Max(1, Min(workers, kMaxWorkers));
            else if (strcmp(name, "outbox.paused") == 0 && parse_bool(value, &paused))
                out->paused = paused ? 1 : 0;
        }
    }
    systable_endscan(scan);
}

}  // namespace

DatabaseSettings read_database_settings() {
    DatabaseSettings settings;
    // What committed last, not the catalog snapshot of the transaction.
    Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
    Relation rel = table_open(DbRoleSettingRelationId, AccessShareLock);
    read_row(rel, snapshot, InvalidOid, &settings);    // every database
    read_row(rel, snapshot, MyDatabaseId, &settings);  // this one: wins
    table_close(rel, AccessShareLock);
    UnregisterSnapshot(snapshot);
    return settings;
}

}  // namespace outbox::pg
