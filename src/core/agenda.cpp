#include "agenda.hpp"

#include <algorithm>

namespace outbox::core {

namespace {

using std::chrono::milliseconds;

constexpr auto kErrorBackoff = std::chrono::seconds(1);
// Events in one dispatch from which the other workers are woken to share
// the claims: a backlog is forming (at 1,000 events/s a round takes one or
// two).
constexpr int kShareDispatched = 16;
constexpr auto kDispatchRetry = milliseconds(2);  // another worker was dispatching: about its transaction's length
constexpr int kQuietBeforeStretch = 3;
constexpr int kMaxStretch = 16;
constexpr auto kMaxStretchedPoll = milliseconds(10000);

}  // namespace

void Agenda::back_off(Clock::time_point now) {
    error_until_ = now + kErrorBackoff;
    look_again();
}

milliseconds Agenda::stretched_poll(milliseconds poll_interval, int quiet) {
    int doublings = std::min(quiet - kQuietBeforeStretch + 1, 4);  // 2^4 = kMaxStretch
    if (doublings <= 0) return poll_interval;
    milliseconds stretched = std::min(poll_interval * (1 << doublings), poll_interval * kMaxStretch);
    return std::max(poll_interval, std::min(stretched, kMaxStretchedPoll));
}

void Agenda::check_timers(Clock::time_point now, milliseconds poll_interval) {
    if (now >= claim_deadline_) {
        // The poll timer or the earliest retry fell due: look for work,
        // and re-arm the timer so that an idle worker does not spin.
        want_claim_ = dispatch_due_ = claim_due_ = next_due_stale_ = true;
        polled_ = true;
        claim_deadline_ = now + stretched_poll(poll_interval, quiet_polls_);
        if (next_due_at_ <= now) next_due_at_ = Clock::time_point::max();  // looked up again
    }
    if (now >= dispatch_retry_at_) {
        want_claim_ = dispatch_due_ = true;
        dispatch_retry_at_ = Clock::time_point::max();
    }
}

void Agenda::look_by(Clock::time_point until) { claim_deadline_ = std::min(claim_deadline_, until); }

bool Agenda::after_transaction(Clock::time_point now, milliseconds poll_interval, const Found& found) {
    if (found.dispatched != 0 || found.took_any) quiet_polls_ = 0;
    else if (polled_) quiet_polls_++;
    polled_ = false;
    claim_deadline_ = now + stretched_poll(poll_interval, quiet_polls_);
    // A full batch or a full dispatch: there is probably more. Another
    // worker dispatching (-1) may have started before the commit that
    // woke this one: look again once it is done, without waking it.
    dispatch_due_ = found.dispatched == found.dispatch_limit || found.dispatched < 0;
    if (found.dispatched < 0) dispatch_retry_at_ = now + kDispatchRetry;
    // Deliveries may be due until a claim has looked (one that found no
    // room for them did not).
    claim_due_ = found.claimed ? found.claimed_full : claim_due_ || found.claimed_full;
    want_claim_ = found.claimed_full || found.dispatched == found.dispatch_limit;
    // More than this worker took, or enough commits since its last look
    // that it may fall behind: the others share the work (commits wake
    // only the first worker, see wake_a_worker()).
    bool share = want_claim_ || found.dispatched >= kShareDispatched;
    if (found.next_due_ms) {
        next_due_at_ = *found.next_due_ms >= 0 ? now + milliseconds(*found.next_due_ms) : Clock::time_point::max();
        next_due_stale_ = false;
    }
    // A due time already past (the transaction took longer than the
    // retry's delay) makes the worker look at once; looking re-arms it.
    if (next_due_at_ != Clock::time_point::max()) claim_deadline_ = std::min(claim_deadline_, next_due_at_);
    return share;
}

}  // namespace outbox::core
