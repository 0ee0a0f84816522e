#include "outcome.hpp"

namespace outbox::core {

Decision decide(const RetryPolicy& policy, const AttemptResult& result, double unit) {
    const long status = result.http_status;
    if (status >= 200 && status <= 299) return {Outcome::Delivered, Millis(0)};
    if (status == 410) return {Outcome::Gone, Millis(0)};
    if (result.attempt >= policy.max_attempts) return {Outcome::Dead, Millis(0)};
    // Only 429 and 503 define Retry-After as "come back then"; on other
    // statuses it would let a receiver pick an arbitrary schedule.
    if ((status == 429 || status == 503) && result.retry_after)
        return {Outcome::Retry, clamp_retry_after(policy, *result.retry_after)};
    return {Outcome::Retry, backoff_delay(policy, result.attempt, unit)};
}

const char* outcome_name(Outcome outcome) noexcept {
    switch (outcome) {
        case Outcome::Delivered: return "delivered";
        case Outcome::Retry: return "retry";
        case Outcome::Dead: return "dead";
        case Outcome::Gone: return "gone";
    }
    return "unknown";
}

}  // namespace outbox::core
