#include "core/rate.hpp"

#include <gtest/gtest.h>

using outbox::core::rate_admit;
using outbox::core::RateState;

namespace {

constexpr int64_t kStart = 1'000'000'000;

// How many of `tries` evenly spaced attempts over `span_us` are admitted.
int admitted(double rate, int64_t span_us, int tries) {
    RateState state{0};
    int n = 0;
    for (int i = 0; i < tries; i++) {
        int64_t wait = 0;
        if (rate_admit(state, kStart + span_us * i / tries, rate, &wait)) n++;
    }
    return n;
}

}  // namespace

TEST(RateLimit, AdmitsTheRateOverTime) {
    // Asked 10,000 times over 10 s, 50/s admits 500 (and one early one).
    int n = admitted(50, 10'000'000, 10'000);
    EXPECT_GE(n, 500);
    EXPECT_LE(n, 502);
    EXPECT_NEAR(admitted(2000, 1'000'000, 100'000), 2000, 2);
}

TEST(RateLimit, NoBurstAfterAPause) {
    RateState state{0};
    int64_t wait = 0;
    ASSERT_TRUE(rate_admit(state, kStart, 10, &wait));
    // A long pause earns no credit: at most two go at once.
    int64_t later = kStart + 60'000'000;
    EXPECT_TRUE(rate_admit(state, later, 10, &wait));
    EXPECT_TRUE(rate_admit(state, later, 10, &wait));
    EXPECT_FALSE(rate_admit(state, later, 10, &wait));
    EXPECT_EQ(wait, 100'000);
}

TEST(RateLimit, SaysHowLongToWait) {
    RateState state{0};
    int64_t wait = -1;
    ASSERT_TRUE(rate_admit(state, kStart, 4, &wait));   // next at +250 ms
    ASSERT_TRUE(rate_admit(state, kStart, 4, &wait));   // early by one: next at +500 ms
    EXPECT_FALSE(rate_admit(state, kStart, 4, &wait));
    EXPECT_EQ(wait, 250'000);
    EXPECT_FALSE(rate_admit(state, kStart + 249'999, 4, &wait));
    EXPECT_EQ(wait, 1);
    EXPECT_TRUE(rate_admit(state, kStart + 250'000, 4, &wait));
}
