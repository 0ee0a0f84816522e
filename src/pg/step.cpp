#include "pg/step.hpp"

#include "pg/callbacks.hpp"
#include "pg/gucs.hpp"
#include "pg/guard.hpp"
#include "pg/log.hpp"
#include "pg/queue.hpp"
#include "pg/recording.hpp"
#include "pg/replan.hpp"
#include "pg/shmem.hpp"
#include "pg/stats.hpp"
#include "pg/worker.hpp"

extern "C" {
#include "utils/memutils.h"
}

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

namespace outbox::pg {

namespace {

using std::chrono::milliseconds;

// Longest a finished result waits to be recorded. Long enough that at a
// moderate rate (100 events/s: a commit every 10 ms) results ride with the
// next commit's dispatch instead of a transaction of their own, which was
// half the worker's CPU at that rate (docs/performance-round-three.md);
// short enough that outbox.deliveries and outbox.stats trail by no more
// than a blink. A crash loses at most this much of results, and those
// deliveries are sent again (at least once).
constexpr auto kFlushDelay = milliseconds(25);
// A keyed result that a delivery of its key may be parked behind waits
// less while other requests are in flight (at once when none are).
constexpr auto kKeyedFlushDelay = milliseconds(5);

MemoryContext make_query_context() {
    return pg_call([] {
        return AllocSetContextCreate(TopMemoryContext, "outbox worker queries", ALLOCSET_DEFAULT_SIZES);
    });
}

}  // namespace

// What one transaction is asked to do, and what it found.
struct Step::Round {
    std::vector<Ready> claimed;
    std::size_t handing_back = 0;
    ExtensionState extension = ExtensionState::Missing;
    char installed_version[kVersionLength] = "";
    bool flush = false;
    bool active = false;
    core::Agenda::Found found;
};

Step::Step(int slot, const Settings& settings, Holdings& holdings, core::Agenda& agenda, Scheduler& scheduler,
           Sending& sending)
    : slot_(slot), settings_(settings), holdings_(holdings), agenda_(agenda), scheduler_(scheduler),
      sending_(sending), query_cxt_(make_query_context()), claimer_(settings, holdings, scheduler, query_cxt_) {}

// Results wait up to kFlushDelay to be written together, usually with
// the next commit's dispatch and claim: at a moderate rate that is one
// transaction per event instead of two. A keyed result is written as
// soon as the worker is idle (within kKeyedFlushDelay when it is not) if
// the next delivery of its key may be parked until then: if a delivery
// was parked (by any backend of the database) since the keyed delivery
// was made (shmem.hpp, note_parked).
bool Step::should_flush() const {
    const Results& results = holdings_.results;
    if (results.finished.empty()) return false;
    auto age = Clock::now() - results.oldest;
    return results.finished.size() >= static_cast<std::size_t>(settings_.batch_size) || age >= kFlushDelay ||
           (unparks() && (holdings_.in_flight.empty() || age >= kKeyedFlushDelay));
}

// A result waiting to be recorded is of a keyed delivery, and a delivery
// was parked since it was made: the next of its key may wait for it.
bool Step::unparks() const {
    const Results& results = holdings_.results;
    return results.keyed() && last_parked_at() >= results.keyed_since;
}

Clock::time_point Step::flush_by() const {
    const Results& results = holdings_.results;
    if (results.finished.empty()) return Clock::time_point::max();
    return results.oldest + (unparks() ? kKeyedFlushDelay : kFlushDelay);
}

bool Step::due() {
    if (should_flush() || !holdings_.unsent.empty()) return true;
    if (!agenda_.wants_claim() || settings_.paused) return false;
    // Before the endpoints are known, or while none of those it knows
    // can be sent to (all disabled, paused or without a URL), a
    // transaction is how the worker learns of one created or enabled:
    // each wake-up (their functions NOTIFY) and each poll makes one.
    auto now = Clock::now();
    return endpoints_version_.empty() || now >= secrets_change_at_ || !scheduler_.claim_plan().empty() ||
           scheduler_.sendable_count(now) == 0;
}

Step::Done Step::run() {
    Round r;
    r.handing_back = holdings_.unsent.size();
    r.found.dispatch_limit = settings_.batch_size * 10;
    r.flush = !holdings_.results.finished.empty();
    // A retry written changes the earliest due time; it stays to be
    // looked up until a transaction does (one whose claim came back
    // full skips it).
    const std::vector<Finished>& finished = holdings_.results.finished;
    if (std::any_of(finished.begin(), finished.end(),
                    [](const Finished& f) { return std::string_view(f.state) == "pending"; }))
        agenda_.retry_written();
    r.active = !settings_.paused;
    if (r.active) note_url_missing();
    // An endpoint with a limit claims a small window, and a full one does
    // not ask for more (claim()): its results are what make it claim again.
    if (std::any_of(finished.begin(), finished.end(), [&](const Finished& f) {
            auto e = holdings_.endpoints.find(f.delivery.endpoint_id);
            return e != holdings_.endpoints.end() && e->second.limited();
        }))
        agenda_.claim_after_recording();
    claimer_.begin();
    if (r.handing_back > 0) agenda_.claim_handed_back();
    in_transaction("outbox: record and claim", [&] { transact(r); });
    holdings_.claimed_pending = 0;  // started below, or dropped with the failed transaction
    pg_call([&] { MemoryContextReset(query_cxt_); });
    return after_commit(r);
}

void Step::transact(Round& r) {
    r.extension = pg_call([&] { return extension_state(r.installed_version); });
    if (r.extension != ExtensionState::Current) return;
    // A key whose head ended and that has a delivery behind it: look for
    // work in the same transaction. Nothing else recorded makes a delivery
    // due at once; a claim that found no room for an endpoint looks again
    // by itself once slots are free, and so does one that came back full
    // (claim()). At 1,000 events/s this skipped claim was a tenth of the
    // worker's CPU.
    if (r.flush && write_results(holdings_.results) > 0) agenda_.claim_after_recording();
    if (r.handing_back > 0) release(holdings_.unsent, r.handing_back, true);
    if (!r.active) return;
    pg_call([] { replan_if_grown(); });
    refresh_endpoints();
    if (slot_ == 0) pg_call([&] { undeliverable_.note(sending_.unavailable()); });
    ClaimPlan plan = scheduler_.claim_plan();
    std::map<int32, int> leased;  // per endpoint, by the dispatch
    int left_due = 0;
    // Only when events may have come: a transaction that just
    // records (a busy key's pipeline makes hundreds a second) skips it.
    if (agenda_.dispatch_due())
        r.found.dispatched = claimer_.dispatch_and_lease(r.found.dispatch_limit, plan, r.claimed, leased, &left_due);
    // What the dispatch leased needs no claim; what it left due does.
    if (agenda_.claim_due() || left_due > 0) claim(r, plan, leased, left_due);
    // Failed callbacks whose time has come are called again, with the
    // claim: a poll, or their due time (ms_until_next_due counts it).
    if (agenda_.claim_due() && pg_call([&] { return call_due_callbacks(settings_.batch_size); }) > 0)
        r.found.claimed_full = true;  // there may be more, and keys they held may go on
    // Leased or claimed: a poll that took something was not quiet.
    r.found.took_any = !r.claimed.empty();
    // The earliest retry changes when this worker writes one (other
    // workers watch their own), and is looked up again at each poll.
    if (!r.found.claimed_full && agenda_.next_due_stale())
        r.found.next_due_ms = pg_call([] { return ms_until_next_due(); });
}

// Claims what `plan` has room for, past what the dispatch leased (which
// left `left_due` new deliveries due).
void Step::claim(Round& r, const ClaimPlan& plan, std::map<int32, int>& leased, int left_due) {
    bool looked_everywhere = true;
    for (auto [endpoint_id, limit] : plan) {
        int room = static_cast<int>(scheduler_.free_slots());
        int asked = std::min(limit - leased[endpoint_id], room);
        if (asked <= 0) {  // no room left for it (or the dispatch took all of it)
            looked_everywhere = false;
            continue;
        }
        int got = claimer_.claim_into(endpoint_id, asked, r.claimed);
        // A full claim says there is probably more to claim, so the
        // other workers are woken; not for a limited endpoint, whose
        // window is small and whose limit holds for all workers.
        if (got == asked && !holdings_.endpoints.at(endpoint_id).limited()) r.found.claimed_full = true;
    }
    // An endpoint there was no room for may have due deliveries (left by
    // the dispatch, or older): look again once slots are free, as a full
    // claim does. Results that unblock no key do not make a claim, so
    // without this they would wait for the poll (test/e2e/limits.test.mjs).
    if (!looked_everywhere) r.found.claimed_full = true;
    r.found.claimed = looked_everywhere;
}

Step::Done Step::after_commit(Round& r) {
    Done done;
    Results& results = holdings_.results;
    if (!note_extension(r.extension, r.installed_version)) {
        // Without the extension (or with a schema this library does not
        // know) nothing we hold can be written back; look again at the
        // next poll.
        results.finished.clear();
        results.gone.clear();
        results.health.clear();
        agenda_.stop_claiming();
        forget_endpoints();
        return done;
    }
    if (r.flush) {
        done.recorded = results.finished.size();
        results.finished.clear();
        results.keyed_since = DT_NOEND;
        results.gone.clear();
        results.health.clear();
    }
    holdings_.unsent.erase(holdings_.unsent.begin(),
                           holdings_.unsent.begin() + static_cast<std::ptrdiff_t>(r.handing_back));
    if (!r.active) return done;
    if (agenda_.after_transaction(Clock::now(), settings_.poll_interval, r.found)) wake_other_workers(slot_);
    claimer_.hand_over(r.claimed);
    done.claimed = true;
    return done;
}

// Reloads the endpoints when their configuration changed or a rotated
// secret expired. Keeps each endpoint's in-flight count and pause.
void Step::refresh_endpoints() {
    char* version_text = pg_call([&] { return endpoints_version(query_cxt_); });
    std::string version = version_text ? version_text : "";
    if (version == endpoints_version_ && Clock::now() < secrets_change_at_) return;
    // Requests claimed ahead were built with the old URL, secrets and headers.
    holdings_.hand_back_ready();
    EndpointRow* rows = nullptr;
    int n = pg_call([&] { return load_endpoints(query_cxt_, &rows); });
    std::map<int32, Endpoint> fresh;
    secrets_change_at_ = Clock::time_point::max();
    for (int i = 0; i < n; i++) {
        const EndpointRow& row = rows[i];
        Endpoint e = endpoint_from_row(row, settings_);
        if (row.secrets_change_in_ms >= 0)
            secrets_change_at_ = std::min(secrets_change_at_, Clock::now() + milliseconds(row.secrets_change_in_ms));
        if (row.failing) pg_call([&] { seed_endpoint_failing(row.id); });
        if (e.held_unsigned() && row.enabled && slot_ == 0)
            log_message(WARNING, fmt::format("outbox worker: endpoint \"{}\" has no signing secret: its deliveries wait",
                                             e.name),
                        {}, "A restore loads the secrets after the endpoints; otherwise give it one with "
                            "outbox.rotate_secret().");
        if (auto old = holdings_.endpoints.find(e.id); old != holdings_.endpoints.end()) {
            e.in_flight = old->second.in_flight;
            e.paused_until = old->second.paused_until;
            e.held_until = old->second.held_until;
        }
        fresh.emplace(e.id, std::move(e));
    }
    holdings_.endpoints = std::move(fresh);
    endpoints_version_ = version;
    sending_.sync_sinks();
}

// Once per configuration, by the first worker: say that the default
// endpoint is off.
void Step::note_url_missing() {
    if (settings_.url.empty() && !url_missing_logged_ && slot_ == 0) {
        log_message(LOG, "outbox.url is not set: the default endpoint receives nothing until it is", {},
                    "Set outbox.url in postgresql.conf and reload, or create endpoints with "
                    "outbox.create_endpoint().");
        url_missing_logged_ = true;
    }
}

// Logs changes of the extension's state once each; returns whether it
// can be delivered from. Between a package upgrade (a new library) and
// ALTER EXTENSION outbox UPDATE the worker waits: events are kept and
// enqueue() goes on working, and delivery resumes with the update.
bool Step::note_extension(ExtensionState state, const char* installed_version) {
    if (state != extension_state_) {
        switch (state) {
            case ExtensionState::Current:
                log_message(LOG, fmt::format("outbox: extension found in database \"{}\"; delivering",
                                             worker_database_name()));
                break;
            case ExtensionState::Missing:
                if (leaves_without_extension()) {  // serving every database with it: this one no more
                    log_message(LOG, fmt::format("outbox: extension \"outbox\" was dropped in database \"{}\"; "
                                                 "its workers stop", worker_database_name()));
                    break;
                }
                log_message(LOG,
                            fmt::format("outbox: extension \"outbox\" is not installed in database \"{}\"; waiting",
                                        worker_database_name()),
                            {}, "Run CREATE EXTENSION outbox in that database, or set outbox.database.");
                break;
            case ExtensionState::OtherVersion:
                log_message(LOG,
                            fmt::format("outbox: extension \"outbox\" in database \"{}\" is version {}, the "
                                        "library is version {}; waiting for the extension to be updated",
                                        worker_database_name(), installed_version, OUTBOX_VERSION),
                            {}, "Run ALTER EXTENSION outbox UPDATE in that database. Events are kept meanwhile.");
                break;
        }
        extension_state_ = state;
    }
    return state == ExtensionState::Current;
}

}  // namespace outbox::pg
