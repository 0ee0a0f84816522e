// Statements the worker runs thousands of times: prepared once per process
// with SPI and kept. PostgreSQL re-plans a kept plan by itself when the
// objects it uses change (DROP/CREATE EXTENSION, ANALYZE, see replan.cpp).
// PostgreSQL-only: call through pg_call(), inside a worker transaction.
#pragma once

extern "C" {
#include "postgres.h"

#include "executor/spi.h"
}

namespace outbox::pg {

struct Plan {
    const char* sql;
    int nargs;
    Oid types[12];
    SPIPlanPtr plan;
};

// The kept plan of `p`, prepared at first use.
SPIPlanPtr prepared(Plan& p);

// Runs `p`; raises an ERROR unless SPI answers `expected`. Returns the
// number of rows processed; the rows are in SPI_tuptable.
int execute(Plan& p, Datum* values, const char* nulls, int expected);

// Column `column` (1-based) of the first row the last statement returned.
Datum result_value(int column, bool* isnull);

}  // namespace outbox::pg
