#include "core/retry.hpp"

#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <limits>

using namespace std::chrono_literals;
using outbox::core::backoff_delay;
using outbox::core::clamp_retry_after;
using outbox::core::Millis;
using outbox::core::parse_retry_after;
using outbox::core::RetryPolicy;

namespace {

const double kAlmostOne = std::nextafter(1.0, 0.0);

// 1994-11-06 08:49:37 UTC, the date of RFC 9110's examples.
constexpr std::chrono::sys_seconds kExampleDate{784111777s};

}  // namespace

TEST(Backoff, DoublesFromBaseWithoutJitterAtHalf) {
    RetryPolicy policy;  // 5 s base, 1 h max
    const long expected[] = {5000, 10000, 20000, 40000, 80000, 160000, 320000, 640000, 1280000, 2560000, 3600000};
    for (int attempt = 1; attempt <= 11; attempt++)
        EXPECT_EQ(backoff_delay(policy, attempt, 0.5).count(), expected[attempt - 1]) << "attempt " << attempt;
}

TEST(Backoff, JitterSpansEightyToHundredTwentyPercent) {
    RetryPolicy policy;
    EXPECT_EQ(backoff_delay(policy, 1, 0.0), 4000ms);
    EXPECT_EQ(backoff_delay(policy, 1, kAlmostOne), 6000ms);
    EXPECT_EQ(backoff_delay(policy, 3, 0.0), 16000ms);
    EXPECT_EQ(backoff_delay(policy, 3, kAlmostOne), 24000ms);
    EXPECT_EQ(backoff_delay(policy, 3, 0.25), 18000ms);
    Millis previous{0};
    for (double unit = 0.0; unit < 1.0; unit += 0.01) {
        Millis delay = backoff_delay(policy, 4, unit);
        EXPECT_GE(delay, 32000ms);
        EXPECT_LE(delay, 48000ms);
        EXPECT_GE(delay, previous);
        previous = delay;
    }
}

TEST(Backoff, CappedAtMax) {
    RetryPolicy policy;
    EXPECT_EQ(backoff_delay(policy, 12, 0.5), 1h);
    EXPECT_EQ(backoff_delay(policy, 12, kAlmostOne), 1h);  // jitter never exceeds max
    EXPECT_EQ(backoff_delay(policy, 12, 0.0), 2880000ms);  // but does go below it

    RetryPolicy small{3, 1s, 10s};
    EXPECT_EQ(backoff_delay(small, 4, 0.5), 8s);
    EXPECT_EQ(backoff_delay(small, 5, 0.5), 10s);
}

TEST(Backoff, NeverBelowEightyPercentOfBase) {
    RetryPolicy policy{10, 5s, 2s};  // max below base: max wins
    EXPECT_EQ(backoff_delay(policy, 1, 0.0), 2s);
    EXPECT_EQ(backoff_delay(policy, 1, 0.5), 2s);
}

TEST(Backoff, HugeAttemptNumbersDoNotOverflow) {
    RetryPolicy policy;
    EXPECT_EQ(backoff_delay(policy, 64, 0.5), 1h);
    EXPECT_EQ(backoff_delay(policy, 1000, 0.5), 1h);
    EXPECT_EQ(backoff_delay(policy, INT_MAX, 0.5), 1h);
    EXPECT_EQ(backoff_delay(policy, INT_MAX, 0.0), 2880000ms);

    RetryPolicy unbounded{10, 1h, Millis(std::numeric_limits<Millis::rep>::max())};
    EXPECT_EQ(backoff_delay(unbounded, INT_MAX, 0.5), unbounded.max);
    EXPECT_EQ(backoff_delay(unbounded, 2, 0.5), 2h);
}

TEST(Backoff, AttemptBelowOneCountsAsFirst) {
    RetryPolicy policy;
    EXPECT_EQ(backoff_delay(policy, 0, 0.5), 5s);
    EXPECT_EQ(backoff_delay(policy, -3, 0.5), 5s);
}

TEST(RetryAfter, DeltaSeconds) {
    auto now = std::chrono::system_clock::now();
    EXPECT_EQ(parse_retry_after("120", now), Millis(120000));
    EXPECT_EQ(parse_retry_after(" 7 ", now), Millis(7000));
    EXPECT_EQ(parse_retry_after("\t7", now), Millis(7000));
    EXPECT_EQ(parse_retry_after("0", now), Millis(0));
}

TEST(RetryAfter, HttpDateInAllThreeFormats) {
    const auto now = std::chrono::system_clock::time_point(kExampleDate - 120s);
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Millis(120000));   // IMF-fixdate
    EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now), Millis(120000));  // RFC 850
    EXPECT_EQ(parse_retry_after("Sun Nov  6 08:49:37 1994", now), Millis(120000));        // asctime
    EXPECT_EQ(parse_retry_after("  Sun, 06 Nov 1994 08:49:37 GMT  ", now), Millis(120000));
}

TEST(RetryAfter, HttpDateCountsFromNowInMilliseconds) {
    const auto now = std::chrono::system_clock::time_point(kExampleDate) - 1500ms;
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Millis(1500));
}

TEST(RetryAfter, PastDateIsZero) {
    const auto now = std::chrono::system_clock::time_point(kExampleDate + 10s);
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Millis(0));
}

TEST(RetryAfter, MalformedIsNullopt) {
    auto now = std::chrono::system_clock::now();
    for (const char* value : {"", "   ", "soon", "-5", "+5", "1.5", "12abc", "0x10", "Sun, 06 Foo 1994 08:49:37 GMT"})
        EXPECT_EQ(parse_retry_after(value, now), std::nullopt) << '"' << value << '"';
    EXPECT_EQ(parse_retry_after(std::string_view("12\0", 3), now), std::nullopt);
}

TEST(RetryAfter, HugeDeltaSaturatesAndClampsToMax) {
    RetryPolicy policy;
    auto huge = parse_retry_after("999999999999999999999999", std::chrono::system_clock::now());
    ASSERT_TRUE(huge.has_value());
    EXPECT_GT(*huge, 1h);
    EXPECT_EQ(clamp_retry_after(policy, *huge), 1h);
}

TEST(RetryAfter, ClampedToZeroAndMax) {
    RetryPolicy policy;
    EXPECT_EQ(clamp_retry_after(policy, 30s), 30s);
    EXPECT_EQ(clamp_retry_after(policy, 0s), 0s);
    EXPECT_EQ(clamp_retry_after(policy, -5s), 0s);
    EXPECT_EQ(clamp_retry_after(policy, 1h), 1h);
    EXPECT_EQ(clamp_retry_after(policy, 2h), 1h);
}
