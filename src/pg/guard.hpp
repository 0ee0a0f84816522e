// Where C++ exceptions and PostgreSQL's longjmp-based errors meet.
//
// PostgreSQL reports errors by longjmp. A longjmp across a frame that holds
// live C++ objects skips their destructors (undefined behaviour), and a C++
// exception thrown through a PG_TRY block leaves PG_exception_stack dangling.
// So the two worlds are kept apart:
//
//  * C++ code calls PostgreSQL only through pg_call(), which runs the call in
//    PG_TRY, copies the error (SQLSTATE, message, detail, hint) and rethrows
//    it as PgError. The callable must be "PostgreSQL-only": it may not create
//    C++ objects with destructors nor throw.
//  * Every entry point PostgreSQL calls (SQL functions, worker mains,
//    callbacks) wraps its C++ body in report_exceptions(), which catches every
//    C++ exception and only then calls ereport(ERROR).
#pragma once

extern "C" {
#include "postgres.h"
}

#include <exception>
#include <string>
#include <type_traits>
#include <utility>

namespace outbox::pg {

// A PostgreSQL error, copied out of the error stack.
class PgError : public std::exception {
public:
    PgError(int sqlerrcode, std::string message, std::string detail, std::string hint)
        : sqlerrcode_(sqlerrcode), message_(std::move(message)), detail_(std::move(detail)),
          hint_(std::move(hint)) {}

    const char* what() const noexcept override { return message_.c_str(); }
    int sqlerrcode() const noexcept { return sqlerrcode_; }
    const std::string& detail() const noexcept { return detail_; }
    const std::string& hint() const noexcept { return hint_; }

private:
    int sqlerrcode_;
    std::string message_;
    std::string detail_;
    std::string hint_;
};

// Called in PG_CATCH: copies the current error, flushes the error state and
// throws PgError. Defined out of line so that no C++ object lives in the
// frame that holds the sigsetjmp buffer.
[[noreturn]] void rethrow_current_pg_error(MemoryContext cxt);

// Runs `fn` (PostgreSQL-only code: no C++ objects with destructors, no throw)
// and turns an ereport(ERROR) inside it into a PgError.
template <typename Fn>
auto pg_call(Fn&& fn) -> decltype(fn()) {
    using Result = decltype(fn());
    MemoryContext volatile cxt = CurrentMemoryContext;
    volatile bool failed = false;
    if constexpr (std::is_void_v<Result>) {
        PG_TRY();
        {
            fn();
        }
        PG_CATCH();
        {
            failed = true;
        }
        PG_END_TRY();
        if (failed) rethrow_current_pg_error(cxt);
    } else {
        static_assert(std::is_trivially_copyable_v<Result>,
                      "pg_call may only return plain values (pointers, Datums, numbers)");
        Result volatile result{};
        PG_TRY();
        {
            result = fn();
        }
        PG_CATCH();
        {
            failed = true;
        }
        PG_END_TRY();
        if (failed) rethrow_current_pg_error(cxt);
        return result;
    }
}

// An error ready for ereport(): plain data, palloc'd strings, so that no C++
// object is alive when ereport() longjmps.
struct ErrorReport {
    int sqlerrcode = 0;
    char* message = nullptr;
    char* detail = nullptr;
    char* hint = nullptr;
};

// Inside a catch block: describes the exception being handled.
ErrorReport describe_current_exception(const char* context);

// ereport() at `elevel`; with ERROR or above it does not return.
void emit_error_report(int elevel, const ErrorReport& report);

// The body of an entry point PostgreSQL calls: runs `fn`, and if it throws,
// reports the exception as ERROR once every C++ object of `fn` is destroyed.
template <typename Fn>
auto report_exceptions(const char* context, Fn&& fn) -> decltype(fn()) {
    ErrorReport report;
    try {
        return fn();
    } catch (...) {
        report = describe_current_exception(context);
    }
    emit_error_report(ERROR, report);
    pg_unreachable();
}

}  // namespace outbox::pg
