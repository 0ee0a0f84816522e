#include "latency.hpp"

#include <cmath>
#include <cstring>

namespace outbox::core {

namespace {

constexpr double kFirstBinUs = 100.0;
constexpr double kGrowth = 1.25;

int bin_of(int64_t latency_us) {
    if (latency_us <= kFirstBinUs) return 0;
    int bin = 1 + static_cast<int>(std::log(static_cast<double>(latency_us) / kFirstBinUs) / std::log(kGrowth));
    return bin < LatencyWindow::kBins ? bin : LatencyWindow::kBins - 1;
}

// The geometric middle of a bin: bin i > 0 holds (100 µs · 1.25^(i-1), 100 µs · 1.25^i].
int64_t middle_of(int bin) {
    if (bin == 0) return static_cast<int64_t>(kFirstBinUs / 2);
    return static_cast<int64_t>(kFirstBinUs * std::pow(kGrowth, bin - 0.5));
}

bool in_window(int64_t slice, int64_t current) {
    return slice != 0 && slice <= current && slice > current - LatencyWindow::kSlices;
}

}  // namespace

void latency_clear(LatencyWindow& w) { std::memset(&w, 0, sizeof(w)); }

void latency_add(LatencyWindow& w, int64_t now_s, int64_t latency_us) {
    int64_t slice = now_s / LatencyWindow::kSliceSeconds;
    int index = static_cast<int>(slice % LatencyWindow::kSlices);
    if (w.slice_id[index] != slice) {
        w.slice_id[index] = slice;
        std::memset(w.counts[index], 0, sizeof(w.counts[index]));
    }
    w.counts[index][bin_of(latency_us < 0 ? 0 : latency_us)]++;
}

std::optional<int64_t> latency_quantile(const LatencyWindow& w, int64_t now_s, double p) {
    int64_t current = now_s / LatencyWindow::kSliceSeconds;
    uint64_t bins[LatencyWindow::kBins] = {};
    uint64_t total = 0;
    for (int s = 0; s < LatencyWindow::kSlices; s++) {
        if (!in_window(w.slice_id[s], current)) continue;
        for (int b = 0; b < LatencyWindow::kBins; b++) {
            bins[b] += w.counts[s][b];
            total += w.counts[s][b];
        }
    }
    if (total == 0) return std::nullopt;
    // The smallest bin at which at least p of the observations are counted.
    auto rank = static_cast<uint64_t>(std::ceil(p * static_cast<double>(total)));
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (int b = 0; b < LatencyWindow::kBins; b++) {
        seen += bins[b];
        if (seen >= rank) return middle_of(b);
    }
    return middle_of(LatencyWindow::kBins - 1);
}

}  // namespace outbox::core
