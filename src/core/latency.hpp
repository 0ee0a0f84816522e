// Latency percentiles over a sliding window, in a fixed-size plain struct
// that can live in shared memory: the window is cut into time slices, each a
// histogram with logarithmic bins (each bin 25 % wider than the one before),
// so a percentile is known to within one bin (about ±12 %) whatever the
// spread. Not synchronised: the caller holds a lock.
#pragma once

#include <cstdint>
#include <optional>

namespace outbox::core {

struct LatencyWindow {
    static constexpr int kSlices = 10;          // of kSliceSeconds each: the last 5 minutes
    static constexpr int64_t kSliceSeconds = 30;
    static constexpr int kBins = 64;            // 100 µs · 1.25^i: 100 µs up to about 2.5 minutes, then one more
    int64_t slice_id[kSlices];                  // which slice (unix seconds / kSliceSeconds) each holds; 0: none
    uint32_t counts[kSlices][kBins];
};

// Empties the window.
void latency_clear(LatencyWindow& w);

// Counts one latency observed at `now_s` (unix seconds).
void latency_add(LatencyWindow& w, int64_t now_s, int64_t latency_us);

// The `p` quantile (0 < p <= 1) of the latencies observed in the window
// ending at `now_s`, in microseconds (the middle of its bin); nothing when
// the window holds none.
std::optional<int64_t> latency_quantile(const LatencyWindow& w, int64_t now_s, double p);

}  // namespace outbox::core
