#include "health.hpp"

namespace outbox::core {

HealthChange count_attempt(EndpointCounters& c, bool success, int64_t now_us, int64_t latency_us) {
    if (success) {
        c.delivered++;
        c.last_success_us = now_us;
        c.consecutive_failures = 0;
        c.first_failure_us = 0;
        latency_add(c.latency, now_us / 1000000, latency_us);
        if (!c.failing) return HealthChange::None;
        c.failing = false;
        return HealthChange::Recovered;
    }
    c.failed_attempts++;
    c.last_failure_us = now_us;
    if (c.consecutive_failures++ == 0) c.first_failure_us = now_us;
    if (c.failing || c.consecutive_failures < kFailingAfter) return HealthChange::None;
    c.failing = true;
    return HealthChange::Failing;
}

void reset_counters(EndpointCounters& c) {
    c.delivered = 0;
    c.failed_attempts = 0;
    c.last_success_us = 0;
    c.last_failure_us = 0;
    latency_clear(c.latency);
}

}  // namespace outbox::core
