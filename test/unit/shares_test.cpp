#include "core/shares.hpp"

#include <gtest/gtest.h>

using namespace outbox::core;

TEST(Shares, ClaimWindowIsTheSlotsAndAtMostABatchAhead) {
    EXPECT_EQ(claim_window(64, 100), 128u);
    EXPECT_EQ(claim_window(64, 10), 74u) << "a batch ahead, not more";
    EXPECT_EQ(claim_window(1, 100), 2u);
    EXPECT_EQ(claim_window(0, 100), 0u);
}

TEST(Shares, FreeSlotsNeverBelowZero) {
    EXPECT_EQ(free_slots(128, 100), 28u);
    EXPECT_EQ(free_slots(128, 128), 0u);
    EXPECT_EQ(free_slots(128, 200), 0u);
}

TEST(Shares, EndpointsShareTheSlotsEqually) {
    EXPECT_EQ(fair_share(64, 100, 1, 0).slots, 64u);
    EXPECT_EQ(fair_share(64, 100, 2, 0).slots, 32u) << "a hanging endpoint keeps only its half";
    EXPECT_EQ(fair_share(64, 100, 3, 0).slots, 21u) << "rounded down";
    EXPECT_EQ(fair_share(64, 100, 0, 0).slots, 64u) << "none sharing: as if one";
    EXPECT_EQ(fair_share(4, 100, 100, 0).slots, 1u) << "never less than one";
}

TEST(Shares, EndpointsShareTheClaimsAheadEqually) {
    EXPECT_EQ(fair_share(256, 100, 1, 0).ahead, 100u) << "alone: the worker's batch ahead";
    EXPECT_EQ(fair_share(256, 100, 40, 0).ahead, 2u);
    EXPECT_EQ(fair_share(64, 100, 2, 0).ahead, 32u) << "at most the slots ahead, as the worker";
    EXPECT_EQ(fair_share(64, 100, 100, 0).ahead, 0u) << "more endpoints than slots ahead: none ahead";
}

// The shares together fit in the worker's window, so an endpoint finds its
// share free however many others hang with theirs full (issue 22: 39
// hostile endpoints and a healthy one, max_in_flight 256, batch 100).
TEST(Shares, TheSharesNeverAddUpToMoreThanTheWorkersWindow) {
    for (std::size_t max : {1u, 4u, 64u, 100u, 256u, 1000u}) {
        for (std::size_t batch : {1u, 10u, 100u, 1000u}) {
            for (std::size_t n = 1; n <= max; n++) {
                Share share = fair_share(max, batch, n, 0);
                std::size_t window = endpoint_claim_window(endpoint_cap(0, max, share.slots), share.ahead, 0);
                EXPECT_LE(n * share.slots, max) << max << " slots, " << n << " endpoints";
                EXPECT_LE(n * window, claim_window(max, batch)) << max << " slots, batch " << batch << ", " << n
                                                                << " endpoints";
            }
        }
    }
}

TEST(Shares, WhatLimitedEndpointsHoldIsLeftOutOfTheShare) {
    // Two fast endpoints beside a slow limited one holding 60 of 64 slots:
    // they share what is left rather than each losing a third.
    EXPECT_EQ(fair_share(64, 100, 2, 60).slots, 2u);
    EXPECT_EQ(fair_share(64, 100, 2, 10).slots, 27u);
    EXPECT_EQ(fair_share(64, 100, 2, 64).slots, 1u) << "nothing left: one each";
    EXPECT_EQ(fair_share(64, 100, 2, 100).slots, 1u);
}

TEST(Shares, AnEndpointsOwnMaxInFlightReplacesItsShare) {
    EXPECT_EQ(endpoint_cap(0, 64, 16), 16u) << "none of its own: the fair share";
    EXPECT_EQ(endpoint_cap(-1, 64, 16), 16u);
    EXPECT_EQ(endpoint_cap(5, 64, 16), 5u);
    EXPECT_EQ(endpoint_cap(40, 64, 16), 40u) << "more than the share";
    EXPECT_EQ(endpoint_cap(500, 64, 16), 64u) << "at most the worker's slots";
}

TEST(Shares, AnEndpointClaimsItsCapAndAtMostItsShareAhead) {
    EXPECT_EQ(endpoint_claim_window(10, 100, 0), 20u) << "never more ahead than its cap";
    EXPECT_EQ(endpoint_claim_window(6, 2, 0), 8u);
}

TEST(Shares, ARateLimitedEndpointClaimsWhatItMaySendInASecond) {
    EXPECT_EQ(endpoint_claim_window(10, 100, 0), 20u);
    EXPECT_EQ(endpoint_claim_window(10, 100, 2), 3u);
    EXPECT_EQ(endpoint_claim_window(10, 100, 2.5), 4u) << "rounded up";
    EXPECT_EQ(endpoint_claim_window(10, 100, 1000), 20u) << "never more than its window";
}

TEST(Shares, ClaimRoomIsWhatTheWindowLeavesAtMostABatch) {
    EXPECT_EQ(claim_room(0, 128, false, 100), 100u);
    EXPECT_EQ(claim_room(100, 128, false, 100), 28u);
    EXPECT_EQ(claim_room(128, 128, false, 100), 0u);
    EXPECT_EQ(claim_room(130, 128, false, 100), 0u);
}

TEST(Shares, ALimitedEndpointIsRefilledOnlyOnceHalfItsWindowIsUsed) {
    // Every claim is a transaction: not one row at a time as each request starts.
    EXPECT_EQ(claim_room(3, 4, true, 100), 0u);
    EXPECT_EQ(claim_room(2, 4, true, 100), 2u);
    EXPECT_EQ(claim_room(0, 4, true, 100), 4u);
    EXPECT_EQ(claim_room(3, 4, false, 100), 1u) << "an unlimited one tops up";
}
