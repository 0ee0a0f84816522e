#include "pg/plan.hpp"

namespace outbox::pg {

SPIPlanPtr prepared(Plan& p) {
    if (p.plan == nullptr) {
        SPIPlanPtr plan = SPI_prepare(p.sql, p.nargs, p.types);
        if (plan == nullptr)
            elog(ERROR, "outbox: preparing a worker query failed: %s",
                 SPI_result_code_string(SPI_result));
        SPI_keepplan(plan);
        p.plan = plan;
    }
    return p.plan;
}

int execute(Plan& p, Datum* values, const char* nulls, int expected) {
    int rc = SPI_execute_plan(prepared(p), values, nulls, false, 0);
    if (rc != expected) elog(ERROR, "outbox: worker query failed: %s", SPI_result_code_string(rc));
    return static_cast<int>(SPI_processed);
}

Datum result_value(int column, bool* isnull) {
    return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, isnull);
}

}  // namespace outbox::pg
