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
    EXPECT_EQ(fair_share(64, 1, 0), 64u);
    EXPECT_EQ(fair_share(64, 2, 0), 32u) << "a hanging endpoint keeps only its half";
    EXPECT_EQ(fair_share(64, 3, 0), 22u) << "rounded up";
    EXPECT_EQ(fair_share(64, 0, 0), 64u) << "none sharing: as if one";
    EXPECT_EQ(fair_share(4, 100, 0), 1u) << "never less than one";
}

TEST(Shares, WhatLimitedEndpointsHoldIsLeftOutOfTheShare) {
    // Two fast endpoints beside a slow limited one holding 60 of 64 slots:
    // they share what is left rather than each losing a third.
    EXPECT_EQ(fair_share(64, 2, 60), 2u);
    EXPECT_EQ(fair_share(64, 2, 10), 27u);
    EXPECT_EQ(fair_share(64, 2, 64), 1u) << "nothing left: one each";
    EXPECT_EQ(fair_share(64, 2, 100), 1u);
}

TEST(Shares, AnEndpointsOwnMaxInFlightReplacesItsShare) {
    EXPECT_EQ(endpoint_cap(0, 64, 16), 16u) << "none of its own: the fair share";
    EXPECT_EQ(endpoint_cap(-1, 64, 16), 16u);
    EXPECT_EQ(endpoint_cap(5, 64, 16), 5u);
    EXPECT_EQ(endpoint_cap(40, 64, 16), 40u) << "more than the share";
    EXPECT_EQ(endpoint_cap(500, 64, 16), 64u) << "at most the worker's slots";
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
