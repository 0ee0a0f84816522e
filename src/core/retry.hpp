// Retry schedule and Retry-After handling.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace outbox::core {

using Millis = std::chrono::milliseconds;

struct RetryPolicy {
    int max_attempts = 10;             // attempts in total, including the first
    Millis base{std::chrono::seconds(5)};
    Millis max{std::chrono::hours(1)};
};

// Delay before the next attempt after `attempt` failed attempts (attempt >= 1):
// base * 2^(attempt-1), capped at max, then multiplied by a jitter factor in
// [0.8, 1.2] derived from `unit` (a uniform random number in [0, 1)), and
// finally clamped to [base * 0.8, max]. Never overflows for large attempts.
Millis backoff_delay(const RetryPolicy& policy, int attempt, double unit);

// Parses a Retry-After header value: delta-seconds ("120") or an HTTP-date in
// any of the three RFC 9110 formats, relative to `now`. Surrounding white
// space is ignored. Returns nullopt for an empty or malformed value. A date
// in the past gives 0.
std::optional<Millis> parse_retry_after(std::string_view value,
                                        std::chrono::system_clock::time_point now);

// Retry-After as honoured: clamped to [0, policy.max].
Millis clamp_retry_after(const RetryPolicy& policy, Millis retry_after);

}  // namespace outbox::core
