// An endpoint's delivery counters and the rule that calls it failing or
// recovered. Plain data (it lives in shared memory); the caller serialises.
//
// The rule: an endpoint is *failing* once kFailingAfter attempts in a row
// have failed, with no success between them; it has *recovered* at its
// first success after that. Each change is reported once (the caller
// enqueues outbox.endpoint.failing / outbox.endpoint.recovered and logs it).
#pragma once

#include <cstdint>

#include "latency.hpp"

namespace outbox::core {

constexpr uint32_t kFailingAfter = 5;

struct EndpointCounters {
    uint64_t delivered;        // 2xx answers since the counters were reset
    uint64_t failed_attempts;  // other outcomes (status, timeout, network error) since then
    int64_t last_success_us;   // unix microseconds; 0: none
    int64_t last_failure_us;
    int64_t first_failure_us;  // the first of the current run of failures; 0: none
    uint32_t consecutive_failures;
    bool failing;
    LatencyWindow latency;     // commit to 2xx
};

enum class HealthChange { None, Failing, Recovered };

// Counts one finished attempt at `now_us`; on success `latency_us` is the
// time from the event's commit to the 2xx. Returns the change it makes.
HealthChange count_attempt(EndpointCounters& c, bool success, int64_t now_us, int64_t latency_us);

// Zeroes the counters (outbox.stats_reset()), keeping the endpoint's state:
// its current run of failures and whether it is failing.
void reset_counters(EndpointCounters& c);

}  // namespace outbox::core
