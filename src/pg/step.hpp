// The worker's transaction step: one short transaction that records
// finished attempts (and disables endpoints that answered 410), hands back
// claims never sent, reloads the endpoints when they changed, dispatches
// new events and claims due deliveries (claiming.hpp), then tells the
// agenda what it found. The claimed requests start only after it commits
// (the loop starts them: worker.cpp). It also checks, in every transaction,
// that the extension is installed at this library's version.
#pragma once

extern "C" {
#include "postgres.h"
}

#include <cstddef>
#include <map>
#include <string>

#include "core/agenda.hpp"
#include "pg/claiming.hpp"
#include "pg/holdings.hpp"
#include "pg/scheduler.hpp"
#include "pg/sending.hpp"
#include "pg/settings.hpp"
#include "pg/transaction.hpp"
#include "pg/undeliverable.hpp"

namespace outbox::pg {

class Step {
public:
    Step(int slot, const Settings& settings, Holdings& holdings, core::Agenda& agenda, Scheduler& scheduler,
         Sending& sending);

    // Whether the worker needs a transaction now: results to record, claims
    // to hand back, or work to look for.
    bool due();

    struct Done {
        bool claimed = false;       // what it claimed waits in holdings.ready: start it
        std::size_t recorded = 0;   // results written
    };
    // Runs the transaction; throws PgError when it fails.
    Done run();

    // The endpoints are loaded again in the next transaction (after an
    // error, a reload).
    void forget_endpoints() { endpoints_version_.clear(); }
    // The last transaction found no extension in the database.
    bool extension_missing() const { return extension_state_ == ExtensionState::Missing; }
    // The settings were reloaded: the missing outbox.url is told again.
    void settings_changed() { url_missing_logged_ = false; }

    // When a rotated secret expires (the endpoints are loaded again then).
    Clock::time_point secrets_change_at() const { return secrets_change_at_; }
    // When the results waiting must be recorded at the latest (max: none wait).
    Clock::time_point flush_by() const;

private:
    struct Round;
    bool should_flush() const;
    bool unparks() const;
    void transact(Round& r);
    void claim(Round& r, const ClaimPlan& plan, std::map<int32, int>& leased, int left_due);
    Done after_commit(Round& r);
    void refresh_endpoints();
    void note_url_missing();
    bool note_extension(ExtensionState state, const char* installed_version);

    int slot_;
    const Settings& settings_;
    Holdings& holdings_;
    core::Agenda& agenda_;
    Scheduler& scheduler_;
    Sending& sending_;
    MemoryContext query_cxt_;  // the rows of one transaction; reset after it
    Claimer claimer_;
    Undeliverable undeliverable_;  // worker 0 tells why deliveries wait (pg/undeliverable.hpp)
    std::string endpoints_version_;  // empty: not loaded
    Clock::time_point secrets_change_at_ = Clock::time_point::max();
    ExtensionState extension_state_ = ExtensionState::Current;
    bool url_missing_logged_ = false;
};

}  // namespace outbox::pg
