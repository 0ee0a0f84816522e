// What to do with a delivery after one attempt. Pure decision logic; the
// worker applies it to the database.
#pragma once

#include <optional>
#include <string>

#include "retry.hpp"

namespace outbox::core {

struct AttemptResult {
    int attempt = 1;                   // this attempt's number, 1-based
    long http_status = 0;              // 0 when no HTTP response arrived
    std::optional<Millis> retry_after; // parsed Retry-After, if the response had one
};

enum class Outcome {
    Delivered,  // 2xx
    Retry,      // failure with attempts left: try again after `delay`
    Dead,       // failure and no attempts left
    Gone,       // 410 Gone: disable the endpoint; the delivery stays pending
};

struct Decision {
    Outcome outcome;
    Millis delay{0};  // for Retry (and Gone: 0)
};

// 2xx -> Delivered. 410 -> Gone. Anything else (including status 0 = timeout
// or network error) is a failure: Dead when attempt >= max_attempts,
// otherwise Retry after clamp_retry_after(retry_after) when the status is 429
// or 503 and a Retry-After was given, else backoff_delay(attempt, unit).
Decision decide(const RetryPolicy& policy, const AttemptResult& result, double unit);

const char* outcome_name(Outcome outcome) noexcept;  // "delivered", "retry", "dead", "gone"

}  // namespace outbox::core
