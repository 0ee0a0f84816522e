#include "pg/guard.hpp"

#include "core/error.hpp"

extern "C" {
#include "utils/elog.h"
#include "utils/memutils.h"
}

namespace outbox::pg {

[[noreturn]] void rethrow_current_pg_error(MemoryContext cxt) {
    MemoryContextSwitchTo(cxt);
    ErrorData* edata = CopyErrorData();
    FlushErrorState();
    int code = edata->sqlerrcode;
    std::string message = edata->message ? edata->message : "unknown error";
    std::string detail = edata->detail ? edata->detail : "";
    std::string hint = edata->hint ? edata->hint : "";
    FreeErrorData(edata);
    throw PgError(code, std::move(message), std::move(detail), std::move(hint));
}

namespace {

int sqlstate_of(core::InvalidInput::Kind kind) {
    switch (kind) {
        case core::InvalidInput::Kind::NullValue: return ERRCODE_NULL_VALUE_NOT_ALLOWED;
        case core::InvalidInput::Kind::TooLarge: return ERRCODE_PROGRAM_LIMIT_EXCEEDED;
        case core::InvalidInput::Kind::Reserved: return ERRCODE_RESERVED_NAME;
        case core::InvalidInput::Kind::NotSupported: return ERRCODE_FEATURE_NOT_SUPPORTED;
        case core::InvalidInput::Kind::InvalidValue: break;
    }
    return ERRCODE_INVALID_PARAMETER_VALUE;
}

char* pstr(const std::string& s) { return s.empty() ? nullptr : pstrdup(s.c_str()); }

}  // namespace

ErrorReport describe_current_exception(const char* context) {
    try {
        throw;
    } catch (const PgError& e) {
        return {e.sqlerrcode(), pstr(e.what()), pstr(e.detail()), pstr(e.hint())};
    } catch (const core::InvalidInput& e) {
        return {sqlstate_of(e.kind()), pstr(e.what()), pstr(e.detail()), pstr(e.hint())};
    } catch (const std::bad_alloc&) {
        return {ERRCODE_OUT_OF_MEMORY, pstrdup("out of memory"), nullptr, nullptr};
    } catch (const std::exception& e) {
        return {ERRCODE_INTERNAL_ERROR, psprintf("%s: %s", context, e.what()), nullptr, nullptr};
    } catch (...) {
        return {ERRCODE_INTERNAL_ERROR, psprintf("%s: unknown C++ exception", context), nullptr, nullptr};
    }
}

void emit_error_report(int elevel, const ErrorReport& report) {
    ereport(elevel, (errcode(report.sqlerrcode ? report.sqlerrcode : ERRCODE_INTERNAL_ERROR),
                     errmsg_internal("%s", report.message ? report.message : "unknown error"),
                     report.detail ? errdetail_internal("%s", report.detail) : 0,
                     report.hint ? errhint("%s", report.hint) : 0));
}

}  // namespace outbox::pg
