#include "core/latency.hpp"

#include <gtest/gtest.h>

using outbox::core::latency_add;
using outbox::core::latency_clear;
using outbox::core::latency_quantile;
using outbox::core::LatencyWindow;

namespace {

constexpr int64_t kNow = 1'800'000'000;  // unix seconds

LatencyWindow empty_window() {
    LatencyWindow w;
    latency_clear(w);
    return w;
}

// Within one bin (25 %) of the exact value.
void expect_near_bin(int64_t got, int64_t exact) {
    EXPECT_GE(got, exact * 0.8) << got << " vs " << exact;
    EXPECT_LE(got, exact * 1.25) << got << " vs " << exact;
}

}  // namespace

TEST(LatencyWindow, EmptyHasNoQuantile) {
    LatencyWindow w = empty_window();
    EXPECT_FALSE(latency_quantile(w, kNow, 0.5).has_value());
}

TEST(LatencyWindow, QuantilesOfAKnownSpread) {
    LatencyWindow w = empty_window();
    // 1 ms .. 100 ms, one each: p50 is about 50 ms, p99 about 99 ms.
    for (int ms = 1; ms <= 100; ms++) latency_add(w, kNow, ms * 1000);
    expect_near_bin(*latency_quantile(w, kNow, 0.5), 50'000);
    expect_near_bin(*latency_quantile(w, kNow, 0.99), 99'000);
    expect_near_bin(*latency_quantile(w, kNow, 0.01), 1'000);
}

TEST(LatencyWindow, ATailDoesNotMoveTheMedian) {
    LatencyWindow w = empty_window();
    for (int i = 0; i < 990; i++) latency_add(w, kNow, 2'000);
    for (int i = 0; i < 10; i++) latency_add(w, kNow, 30'000'000);  // 30 s
    expect_near_bin(*latency_quantile(w, kNow, 0.5), 2'000);
    expect_near_bin(*latency_quantile(w, kNow, 0.99), 2'000);
    expect_near_bin(*latency_quantile(w, kNow, 0.999), 30'000'000);
}

TEST(LatencyWindow, OldObservationsLeaveTheWindow) {
    LatencyWindow w = empty_window();
    latency_add(w, kNow, 500'000);
    latency_add(w, kNow + 200, 1'000);
    expect_near_bin(*latency_quantile(w, kNow + 200, 1.0), 500'000);  // both within 5 minutes
    expect_near_bin(*latency_quantile(w, kNow + 330, 1.0), 1'000);    // the first is older than 5 minutes
    EXPECT_FALSE(latency_quantile(w, kNow + 1000, 0.5).has_value());
}

TEST(LatencyWindow, ASliceIsReusedCleanly) {
    LatencyWindow w = empty_window();
    latency_add(w, kNow, 900'000);
    // Ten slices later the same slot serves a new slice: the old count is gone.
    latency_add(w, kNow + LatencyWindow::kSlices * LatencyWindow::kSliceSeconds, 1'000);
    expect_near_bin(*latency_quantile(w, kNow + LatencyWindow::kSlices * LatencyWindow::kSliceSeconds, 1.0), 1'000);
}

TEST(LatencyWindow, ExtremesLandInTheEndBins) {
    LatencyWindow w = empty_window();
    latency_add(w, kNow, -5);
    latency_add(w, kNow, 0);
    EXPECT_LE(*latency_quantile(w, kNow, 1.0), 100);
    latency_add(w, kNow, int64_t{1} << 50);
    EXPECT_GT(*latency_quantile(w, kNow, 1.0), 100'000'000);
}
