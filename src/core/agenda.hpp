// When a worker looks for work: the flags and timers that decide whether
// its next round needs a transaction to dispatch new events and claim due
// deliveries (pg/step.cpp), and how long it may sleep (pg/worker.cpp).
// Pure: every call is told the time.
//
// What makes it look: a wake-up (a commit sets its latch, a NOTIFY, another
// worker asks it to share the work), the poll timer (outbox.poll_interval),
// the earliest retry it knows of, the end of an endpoint's pause, another
// worker's dispatch being over; and what its last transaction found (a full
// claim or dispatch: probably more).
//
// A transaction dispatches new events and leases at once what it makes of
// them, so a commit needs no claim: the claim (a statement of its own) runs
// only when something else may have become due: a poll, a retry or pause
// falling due, a keyed result recorded (its key's next delivery moves up),
// a NOTIFY (endpoints enabled, deliveries replayed), another worker's
// request, a dispatch that left due deliveries unleased, a full claim.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace outbox::core {

class Agenda {
public:
    using Clock = std::chrono::steady_clock;

    // A worker starts by looking at once.
    explicit Agenda(Clock::time_point now) : claim_deadline_(now) {}

    // A commit with new events: dispatch (and lease what it makes).
    void commit_woke() {
        want_claim_ = dispatch_due_ = true;
        quiet_polls_ = 0;
    }

    // A NOTIFY, or another worker asking to share its work: dispatch and claim.
    void wake() {
        want_claim_ = dispatch_due_ = claim_due_ = true;
        quiet_polls_ = 0;
    }

    // Anything may have changed (a reload, an error): dispatch, claim and
    // look up the earliest retry again.
    void look_again() {
        wake();
        next_due_stale_ = true;
    }

    // After an error: no transaction for a while, then look again.
    void back_off(Clock::time_point now);
    bool backing_off(Clock::time_point now) const { return now < error_until_; }
    Clock::time_point error_until() const { return error_until_; }

    // At the start of a round: the poll timer or the earliest retry fell
    // due, or another worker's dispatch is over.
    void check_timers(Clock::time_point now, std::chrono::milliseconds poll_interval);

    // An endpoint paused until `until`: look for its work again then.
    void look_by(Clock::time_point until);

    // A retry is being written: the earliest due time changes, and stays to
    // be looked up until a transaction does.
    void retry_written() { next_due_stale_ = true; }

    // Recorded results unblocked keys (a head delivered or dead, with a
    // delivery behind it): the same transaction claims.
    void claim_after_recording() { want_claim_ = claim_due_ = true; }

    // Claims were handed back (due again at once): claim.
    void claim_handed_back() { want_claim_ = claim_due_ = true; }

    // Nothing can be delivered (the extension is missing or of another
    // version): look again at the next poll.
    void stop_claiming() { want_claim_ = false; }

    // What a committed transaction found.
    struct Found {
        int dispatched = 0;      // events dispatched; -1: another worker was dispatching
        int dispatch_limit = 0;  // at most this many were asked for
        bool claimed = false;                    // every endpoint there was room for was claimed from
        bool claimed_full = false;               // a claim came back full, or due deliveries were left: more
        bool took_any = false;                   // it claimed or leased something (the poll was not quiet)
        std::optional<int64_t> next_due_ms;      // looked up: the earliest retry (-1: none)
    };
    // Re-arms the poll timer and decides what the next round does. Returns
    // whether the other workers should be woken to share the work.
    bool after_transaction(Clock::time_point now, std::chrono::milliseconds poll_interval, const Found& found);

    // The poll interval once `quiet` polls in a row have found nothing: an
    // idle database costs little more than its poll, so its polls space out.
    // From the fourth quiet poll the interval doubles each time, up to 16
    // times `poll_interval` but not beyond 10 s (never below `poll_interval`).
    // A wake-up or work found brings it back.
    static std::chrono::milliseconds stretched_poll(std::chrono::milliseconds poll_interval, int quiet);

    // Whether a transaction is wanted (to dispatch, claim or both).
    bool wants_claim() const { return want_claim_; }
    bool dispatch_due() const { return dispatch_due_; }
    bool claim_due() const { return claim_due_; }
    bool next_due_stale() const { return next_due_stale_; }
    Clock::time_point claim_deadline() const { return claim_deadline_; }
    Clock::time_point dispatch_retry_at() const { return dispatch_retry_at_; }

private:
    bool want_claim_ = true;
    bool dispatch_due_ = true;  // events may have been committed since the last dispatch
    bool claim_due_ = true;     // deliveries may be due that no dispatch leases
    Clock::time_point claim_deadline_;  // the poll timer, or earlier: a retry or a pause falls due
    Clock::time_point dispatch_retry_at_ = Clock::time_point::max();  // after another worker's dispatch
    Clock::time_point next_due_at_ = Clock::time_point::max();  // the earliest retry, as last looked up
    bool next_due_stale_ = true;  // look it up in the next transaction
    Clock::time_point error_until_{};
    int quiet_polls_ = 0;  // polls in a row that found nothing, since the last wake-up
    bool polled_ = false;  // the round under way was started by the poll
};

}  // namespace outbox::core
