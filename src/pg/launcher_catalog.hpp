// What the launcher reads of the catalogs, in one short transaction: the
// databases (pg_database). Bound to no database, it can read only the
// shared catalogs that every process has at hand (pg_database, not
// pg_db_role_setting): whether a database has the extension, and the
// outbox settings made for it, are read by its first worker
// (database_settings.hpp).
//
// PostgreSQL-only code: plain C data; errors end the launcher.
#pragma once

extern "C" {
#include "postgres.h"
}

namespace outbox::pg {

struct DatabaseRow {
    Oid oid;
    NameData name;
    bool enterable;  // allows connections, is no template and is valid
};

// The databases as they are now, in pg_database's order, palloc'd in the
// current memory context; *n gets their number.
DatabaseRow* scan_databases(int* n);

}  // namespace outbox::pg
