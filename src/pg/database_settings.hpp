// The outbox settings made for one database: ALTER DATABASE ... SET (or
// ALTER ROLE ALL IN DATABASE ... SET) of outbox.workers and outbox.paused,
// else ALTER ROLE ALL ... SET, else nothing (the server's postgresql.conf
// then decides). Read from pg_db_role_setting by a database's first worker,
// at its start and when a commit changed them; published in shared memory
// (shmem.hpp) for the launcher (how many workers) and for the database's
// workers (whether to claim).
//
// PostgreSQL-only code: call through pg_call(), in a transaction.
#pragma once

extern "C" {
#include "postgres.h"
}

namespace outbox::pg {

struct DatabaseSettings {
    int8 paused = -1;  // -1: not set for it; else 0 or 1
    int workers = 0;   // 0: not set for it
};

DatabaseSettings read_database_settings();

}  // namespace outbox::pg
