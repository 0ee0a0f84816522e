// Retry-After values from a receiver (src/core/retry.cpp): delta-seconds or
// an HTTP date (libcurl's curl_getdate), and what the worker decides with
// them (src/core/outcome.cpp).
#include <chrono>

#include "core/outcome.hpp"
#include "core/retry.hpp"
#include "fuzz.hpp"

using namespace outbox::core;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1767225600));  // 2026-01-01
    auto value = parse_retry_after(fuzz::text(data, size), now);
    RetryPolicy policy;
    policy.base = Millis(100);
    policy.max = Millis(3600000);
    if (value) {
        FUZZ_CHECK(value->count() >= 0, "a Retry-After is never negative");
        Millis clamped = clamp_retry_after(policy, *value);
        FUZZ_CHECK(clamped >= Millis(0) && clamped <= policy.max, "clamped into [0, max]");
    }
    for (long status : {429L, 503L, 500L}) {
        AttemptResult result{3, status, value};
        Decision d = decide(policy, result, size ? data[0] / 256.0 : 0.5);
        FUZZ_CHECK(d.delay >= Millis(0) && d.delay <= policy.max, "a retry's delay within [0, max]");
    }
    return 0;
}
