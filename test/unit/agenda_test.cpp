#include "core/agenda.hpp"

#include <gtest/gtest.h>

#include <optional>

using outbox::core::Agenda;
using std::chrono::milliseconds;

namespace {

const Agenda::Clock::time_point kT0 = Agenda::Clock::time_point{} + std::chrono::hours(1000);
constexpr milliseconds kPoll(1000);

// What a transaction that asked for up to 1,000 events (and claimed) found.
Agenda::Found found(int dispatched, bool claimed_full = false, std::optional<int64_t> next_due_ms = std::nullopt) {
    Agenda::Found f;
    f.dispatch_limit = 1000;
    f.dispatched = dispatched;
    f.claimed = true;
    f.claimed_full = claimed_full;
    f.next_due_ms = next_due_ms;
    return f;
}

// The same without a claim.
Agenda::Found dispatched_only(int dispatched) {
    Agenda::Found f = found(dispatched);
    f.claimed = false;
    return f;
}

// An agenda whose first transaction (at kT0) found nothing to do.
Agenda settled() {
    Agenda agenda(kT0);
    agenda.check_timers(kT0, kPoll);
    agenda.after_transaction(kT0, kPoll, found(0, false, -1));
    return agenda;
}

}  // namespace

TEST(Agenda, AWorkerLooksAtOnceWhenItStarts) {
    Agenda agenda(kT0);
    EXPECT_TRUE(agenda.wants_claim());
    EXPECT_TRUE(agenda.dispatch_due());
    EXPECT_TRUE(agenda.claim_due());
    EXPECT_TRUE(agenda.next_due_stale());
    EXPECT_EQ(agenda.claim_deadline(), kT0);
    EXPECT_FALSE(agenda.backing_off(kT0));
}

TEST(Agenda, NothingFoundSleepsUntilThePoll) {
    Agenda agenda = settled();
    EXPECT_FALSE(agenda.wants_claim());
    EXPECT_FALSE(agenda.dispatch_due());
    EXPECT_FALSE(agenda.claim_due());
    EXPECT_FALSE(agenda.next_due_stale());
    EXPECT_EQ(agenda.claim_deadline(), kT0 + kPoll);
    agenda.check_timers(kT0 + kPoll - milliseconds(1), kPoll);
    EXPECT_FALSE(agenda.wants_claim());
    // The poll falls due: look for everything, and re-arm it.
    agenda.check_timers(kT0 + kPoll, kPoll);
    EXPECT_TRUE(agenda.wants_claim());
    EXPECT_TRUE(agenda.dispatch_due());
    EXPECT_TRUE(agenda.claim_due());
    EXPECT_TRUE(agenda.next_due_stale());
    EXPECT_EQ(agenda.claim_deadline(), kT0 + 2 * kPoll);
}

TEST(Agenda, ACommitWakesItToDispatchWithoutAClaim) {
    Agenda agenda = settled();
    agenda.commit_woke();
    EXPECT_TRUE(agenda.wants_claim());
    EXPECT_TRUE(agenda.dispatch_due());
    EXPECT_FALSE(agenda.claim_due()) << "the dispatch leases what the commit made";
    EXPECT_FALSE(agenda.next_due_stale()) << "the earliest retry has not changed";
}

TEST(Agenda, ANotifyOrAnotherWorkersRequestWakesItToDispatchAndClaim) {
    Agenda agenda = settled();
    agenda.wake();
    EXPECT_TRUE(agenda.wants_claim());
    EXPECT_TRUE(agenda.dispatch_due());
    EXPECT_TRUE(agenda.claim_due());
    EXPECT_FALSE(agenda.next_due_stale()) << "the earliest retry has not changed";
}

TEST(Agenda, DeliveriesStayDueUntilAClaimLooks) {
    Agenda agenda = settled();
    agenda.wake();
    agenda.after_transaction(kT0, kPoll, dispatched_only(1));
    EXPECT_TRUE(agenda.claim_due()) << "no room to claim in that transaction";
    agenda.after_transaction(kT0, kPoll, found(0));
    EXPECT_FALSE(agenda.claim_due());
    // Due deliveries the dispatch left unleased, without room to claim them.
    Agenda::Found left = dispatched_only(1);
    left.claimed_full = true;
    agenda.after_transaction(kT0, kPoll, left);
    EXPECT_TRUE(agenda.claim_due());
    EXPECT_TRUE(agenda.wants_claim());
}

TEST(Agenda, AFullClaimOrDispatchLooksAgainAndSharesTheWork) {
    Agenda agenda = settled();
    EXPECT_TRUE(agenda.after_transaction(kT0, kPoll, found(0, true)));
    EXPECT_TRUE(agenda.wants_claim());
    EXPECT_FALSE(agenda.dispatch_due());

    EXPECT_TRUE(agenda.after_transaction(kT0, kPoll, found(1000)));
    EXPECT_TRUE(agenda.wants_claim());
    EXPECT_TRUE(agenda.dispatch_due());
}

TEST(Agenda, ABacklogFormingWakesTheOthersWithoutLookingAgain) {
    Agenda agenda = settled();
    EXPECT_FALSE(agenda.after_transaction(kT0, kPoll, found(15)));
    EXPECT_TRUE(agenda.after_transaction(kT0, kPoll, found(16)));
    EXPECT_FALSE(agenda.wants_claim());
    EXPECT_FALSE(agenda.dispatch_due());
}

TEST(Agenda, AnotherWorkersDispatchIsWaitedOutWithoutWakingIt) {
    Agenda agenda = settled();
    EXPECT_FALSE(agenda.after_transaction(kT0, kPoll, found(-1)));
    EXPECT_TRUE(agenda.dispatch_due());
    EXPECT_FALSE(agenda.wants_claim());
    EXPECT_EQ(agenda.dispatch_retry_at(), kT0 + milliseconds(2));
    agenda.check_timers(kT0 + milliseconds(2), kPoll);
    EXPECT_TRUE(agenda.wants_claim());
    EXPECT_EQ(agenda.dispatch_retry_at(), Agenda::Clock::time_point::max());
}

TEST(Agenda, TheEarliestRetryComesBeforeThePoll) {
    Agenda agenda = settled();
    agenda.after_transaction(kT0, kPoll, found(0, false, 300));
    EXPECT_EQ(agenda.claim_deadline(), kT0 + milliseconds(300));
    EXPECT_FALSE(agenda.next_due_stale());
    // Looked up again once it fell due.
    agenda.check_timers(kT0 + milliseconds(300), kPoll);
    EXPECT_TRUE(agenda.next_due_stale());
    agenda.after_transaction(kT0 + milliseconds(301), kPoll, found(0));
    EXPECT_EQ(agenda.claim_deadline(), kT0 + milliseconds(301) + kPoll) << "the past retry is not kept";
}

TEST(Agenda, ARetryAlreadyDueMakesItLookAtOnce) {
    Agenda agenda = settled();
    agenda.after_transaction(kT0, kPoll, found(0, false, 0));
    EXPECT_EQ(agenda.claim_deadline(), kT0);
}

TEST(Agenda, APauseEndingMakesItLookThen) {
    Agenda agenda = settled();
    agenda.look_by(kT0 + milliseconds(200));
    EXPECT_EQ(agenda.claim_deadline(), kT0 + milliseconds(200));
    agenda.look_by(kT0 + milliseconds(500));
    EXPECT_EQ(agenda.claim_deadline(), kT0 + milliseconds(200)) << "a later pause does not postpone it";
}

TEST(Agenda, AnErrorBacksOffThenLooksForEverything) {
    Agenda agenda = settled();
    agenda.back_off(kT0);
    EXPECT_TRUE(agenda.backing_off(kT0 + milliseconds(999)));
    EXPECT_FALSE(agenda.backing_off(kT0 + milliseconds(1000)));
    EXPECT_EQ(agenda.error_until(), kT0 + milliseconds(1000));
    EXPECT_TRUE(agenda.wants_claim());
    EXPECT_TRUE(agenda.dispatch_due());
    EXPECT_TRUE(agenda.next_due_stale());
}

TEST(Agenda, RecordingAndRetriesAreLookedAtInTheSameTransaction) {
    Agenda agenda = settled();
    agenda.claim_after_recording();
    EXPECT_TRUE(agenda.wants_claim());
    EXPECT_TRUE(agenda.claim_due());
    EXPECT_FALSE(agenda.dispatch_due());
    agenda.retry_written();
    EXPECT_TRUE(agenda.next_due_stale());
    agenda.stop_claiming();
    EXPECT_FALSE(agenda.wants_claim());
}

TEST(Agenda, QuietPollsSpaceOutUpToTenSeconds) {
    EXPECT_EQ(Agenda::stretched_poll(kPoll, 0), kPoll);
    EXPECT_EQ(Agenda::stretched_poll(kPoll, 2), kPoll) << "three quiet polls before it stretches";
    EXPECT_EQ(Agenda::stretched_poll(kPoll, 3), 2 * kPoll);
    EXPECT_EQ(Agenda::stretched_poll(kPoll, 5), 8 * kPoll);
    EXPECT_EQ(Agenda::stretched_poll(kPoll, 50), milliseconds(10000)) << "at most 10 s";
    EXPECT_EQ(Agenda::stretched_poll(milliseconds(200), 50), milliseconds(3200)) << "at most 16 times the setting";
    EXPECT_EQ(Agenda::stretched_poll(std::chrono::hours(1), 50), std::chrono::hours(1)) << "never below the setting";
}

TEST(Agenda, AnIdleWorkerPollsLessAndAWakeUpBringsThePollBack) {
    Agenda agenda = settled();
    auto now = kT0;
    for (int i = 0; i < 6; i++) {  // polls that find nothing
        now = agenda.claim_deadline();
        agenda.check_timers(now, kPoll);
        agenda.after_transaction(now, kPoll, found(0));
    }
    EXPECT_EQ(agenda.claim_deadline() - now, milliseconds(10000));
    agenda.commit_woke();
    agenda.after_transaction(now, kPoll, found(1));
    EXPECT_EQ(agenda.claim_deadline() - now, kPoll);
}

TEST(Agenda, APollThatFindsWorkKeepsThePollShort) {
    Agenda agenda = settled();
    auto now = kT0;
    for (int i = 0; i < 6; i++) {
        now = agenda.claim_deadline();
        agenda.check_timers(now, kPoll);
        Agenda::Found f = found(0);
        f.took_any = true;  // a retry fell due, or a lease ran out
        agenda.after_transaction(now, kPoll, f);
    }
    EXPECT_EQ(agenda.claim_deadline() - now, kPoll);
}
