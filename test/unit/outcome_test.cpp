#include "core/outcome.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace std::chrono_literals;
using outbox::core::AttemptResult;
using outbox::core::decide;
using outbox::core::Decision;
using outbox::core::Millis;
using outbox::core::Outcome;
using outbox::core::outcome_name;
using outbox::core::RetryPolicy;

namespace {

Decision after(long status, int attempt = 1, std::optional<Millis> retry_after = std::nullopt) {
    RetryPolicy policy;  // 10 attempts, 5 s base, 1 h max
    return decide(policy, AttemptResult{attempt, status, retry_after}, 0.5);
}

}  // namespace

TEST(Decide, TwoHundredsAreDelivered) {
    for (long status : {200L, 201L, 204L, 299L}) {
        EXPECT_EQ(after(status).outcome, Outcome::Delivered) << status;
        EXPECT_EQ(after(status, 10).outcome, Outcome::Delivered) << "last attempt " << status;
    }
    EXPECT_EQ(after(199).outcome, Outcome::Retry);
    EXPECT_EQ(after(300).outcome, Outcome::Retry);
}

TEST(Decide, GoneDisablesEvenOnTheLastAttempt) {
    Decision d = after(410);
    EXPECT_EQ(d.outcome, Outcome::Gone);
    EXPECT_EQ(d.delay, 0ms);
    EXPECT_EQ(after(410, 10).outcome, Outcome::Gone);
}

TEST(Decide, FailuresRetryWithBackoff) {
    Decision d = after(500, 1);
    EXPECT_EQ(d.outcome, Outcome::Retry);
    EXPECT_EQ(d.delay, 5s);
    EXPECT_EQ(after(500, 3).delay, 20s);
    EXPECT_EQ(after(404, 2).delay, 10s);
    EXPECT_EQ(after(301, 2).delay, 10s);  // redirects are not followed: a failure
}

TEST(Decide, NoResponseIsAFailure) {
    Decision d = after(0, 2);
    EXPECT_EQ(d.outcome, Outcome::Retry);
    EXPECT_EQ(d.delay, 10s);
    EXPECT_EQ(after(0, 10).outcome, Outcome::Dead);
}

TEST(Decide, RetryAfterHonouredOnlyFor429And503) {
    EXPECT_EQ(after(429, 1, 42s).delay, 42s);
    EXPECT_EQ(after(503, 1, 42s).delay, 42s);
    EXPECT_EQ(after(429, 1, 0s).delay, 0s);
    EXPECT_EQ(after(503, 1, 3h).delay, 1h);  // clamped to policy.max
    EXPECT_EQ(after(429, 1, -1s).delay, 0s);
    EXPECT_EQ(after(500, 1, 42s).delay, 5s);  // ignored: backoff
    EXPECT_EQ(after(502, 2, 42s).delay, 10s);
    EXPECT_EQ(after(429, 2).delay, 10s);      // none given: backoff
    EXPECT_EQ(after(429, 1, 42s).outcome, Outcome::Retry);
}

TEST(Decide, LastAttemptIsDead) {
    EXPECT_EQ(after(500, 9).outcome, Outcome::Retry);
    Decision d = after(500, 10);
    EXPECT_EQ(d.outcome, Outcome::Dead);
    EXPECT_EQ(d.delay, 0ms);
    EXPECT_EQ(after(503, 10, 5s).outcome, Outcome::Dead);
    EXPECT_EQ(after(500, 11).outcome, Outcome::Dead);

    RetryPolicy once{1, 5s, 1h};
    EXPECT_EQ(decide(once, AttemptResult{1, 500, std::nullopt}, 0.5).outcome, Outcome::Dead);
}

TEST(Decide, OutcomeNames) {
    EXPECT_STREQ(outcome_name(Outcome::Delivered), "delivered");
    EXPECT_STREQ(outcome_name(Outcome::Retry), "retry");
    EXPECT_STREQ(outcome_name(Outcome::Dead), "dead");
    EXPECT_STREQ(outcome_name(Outcome::Gone), "gone");
}
