// Short worker transactions. Each one: start, snapshot, SPI, work, commit;
// on any error the transaction is aborted and the error rethrown as a C++
// exception. No transaction is ever open while an HTTP request is waited on.
#pragma once

#include "pg/guard.hpp"

namespace outbox::pg {

// PostgreSQL-only pieces (call through pg_call).
void begin_worker_transaction(const char* activity);
void commit_worker_transaction();
void abort_worker_transaction();

// The outbox extension in this database, as the worker sees it (needs a
// transaction): missing, installed at another version than this library's
// (after a package upgrade, until ALTER EXTENSION outbox UPDATE), or ready.
enum class ExtensionState { Missing, OtherVersion, Current };
constexpr int kVersionLength = 64;
// With OtherVersion, `version` (kVersionLength bytes, or nullptr) gets the installed version.
ExtensionState extension_state(char* version);

// True when the extension is installed at this library's version.
bool extension_installed();

// Runs `body` (C++ that calls PostgreSQL through pg_call) in one transaction.
template <typename Body>
void in_transaction(const char* activity, Body&& body) {
    try {
        pg_call([&] { begin_worker_transaction(activity); });
        body();
        pg_call([] { commit_worker_transaction(); });
    } catch (...) {
        pg_call([] { abort_worker_transaction(); });
        throw;
    }
}

}  // namespace outbox::pg
