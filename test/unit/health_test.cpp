#include "core/health.hpp"

#include <gtest/gtest.h>

#include <cstring>

using outbox::core::count_attempt;
using outbox::core::EndpointCounters;
using outbox::core::HealthChange;
using outbox::core::kFailingAfter;
using outbox::core::reset_counters;

namespace {

EndpointCounters fresh() {
    EndpointCounters c;
    std::memset(&c, 0, sizeof(c));
    return c;
}

constexpr int64_t kT = 1'800'000'000'000'000;  // unix microseconds

}  // namespace

TEST(EndpointHealth, FailingAfterARunOfFailuresOnce) {
    EndpointCounters c = fresh();
    for (uint32_t i = 1; i < kFailingAfter; i++) EXPECT_EQ(count_attempt(c, false, kT + i, 0), HealthChange::None);
    EXPECT_EQ(count_attempt(c, false, kT + 10, 0), HealthChange::Failing);
    EXPECT_EQ(count_attempt(c, false, kT + 11, 0), HealthChange::None) << "reported once";
    EXPECT_EQ(c.consecutive_failures, kFailingAfter + 1);
    EXPECT_EQ(c.first_failure_us, kT + 1);
    EXPECT_EQ(c.failed_attempts, kFailingAfter + 1);
    EXPECT_EQ(count_attempt(c, true, kT + 20, 1000), HealthChange::Recovered);
    EXPECT_EQ(count_attempt(c, true, kT + 21, 1000), HealthChange::None);
    EXPECT_EQ(c.consecutive_failures, 0u);
    EXPECT_EQ(c.first_failure_us, 0);
    EXPECT_EQ(c.delivered, 2u);
    EXPECT_EQ(c.last_success_us, kT + 21);
}

TEST(EndpointHealth, ASuccessBreaksTheRun) {
    EndpointCounters c = fresh();
    for (int round = 0; round < 3; round++) {
        for (uint32_t i = 1; i < kFailingAfter; i++) EXPECT_EQ(count_attempt(c, false, kT, 0), HealthChange::None);
        EXPECT_EQ(count_attempt(c, true, kT, 0), HealthChange::None);
    }
    EXPECT_FALSE(c.failing);
}

TEST(EndpointHealth, ResetKeepsTheState) {
    EndpointCounters c = fresh();
    for (uint32_t i = 0; i < kFailingAfter; i++) count_attempt(c, false, kT, 0);
    count_attempt(c, false, kT, 0);
    reset_counters(c);
    EXPECT_EQ(c.failed_attempts, 0u);
    EXPECT_EQ(c.last_failure_us, 0);
    EXPECT_TRUE(c.failing);
    EXPECT_EQ(c.consecutive_failures, kFailingAfter + 1);
    EXPECT_EQ(count_attempt(c, true, kT, 0), HealthChange::Recovered);
}
