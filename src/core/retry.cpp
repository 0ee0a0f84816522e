#include "retry.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace outbox::core {

namespace {

using Rep = Millis::rep;

// base * 2^(attempt-1), saturating at `cap` instead of overflowing.
Rep doubled(Rep base, int attempt, Rep cap) {
    if (base == 0) return 0;
    Rep delay = base;
    for (int i = 1; i < attempt && delay < cap; i++) {
        if (delay > cap / 2) return cap;
        delay *= 2;
    }
    return std::min(delay, cap);
}

std::string_view trim(std::string_view s) {
    auto is_space = [](char c) { return c == ' ' || c == '\t'; };
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

// No legitimate Retry-After asks for more than this; the caller clamps to
// policy.max anyway, the bound only keeps the arithmetic in range.
constexpr Rep kMaxSeconds = std::numeric_limits<Rep>::max() / 1000 / 2;

}  // namespace

Millis backoff_delay(const RetryPolicy& policy, int attempt, double unit) {
    const Rep base = std::max<Rep>(policy.base.count(), 0);
    const Rep max = std::max<Rep>(policy.max.count(), 0);
    const Rep capped = doubled(base, std::max(attempt, 1), max);

    if (!(unit >= 0.0)) unit = 0.0;  // also catches NaN
    if (unit > 1.0) unit = 1.0;
    const double jittered = static_cast<double>(capped) * (0.8 + 0.4 * unit);

    const double floor = static_cast<double>(base) * 0.8;
    if (jittered >= static_cast<double>(max)) return Millis(max);
    if (jittered <= floor) return Millis(std::min<Rep>(std::llround(floor), max));
    return Millis(std::llround(jittered));
}

std::optional<Millis> parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now) {
    value = trim(value);
    if (value.empty()) return std::nullopt;

    if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        Rep seconds = 0;
        auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
        if (ec == std::errc::result_out_of_range || seconds > kMaxSeconds) seconds = kMaxSeconds;
        return Millis(seconds * 1000);
    }

    // curl_getdate() understands IMF-fixdate, RFC 850 and asctime dates; it
    // needs a NUL-terminated string and returns -1 for anything else.
    if (value.find('\0') != std::string_view::npos) return std::nullopt;
    const std::string text(value);
    const time_t date = curl_getdate(text.c_str(), nullptr);
    if (date == -1) return std::nullopt;

    const Rep now_ms = std::chrono::duration_cast<Millis>(now.time_since_epoch()).count();
    const Rep date_s = std::min<Rep>(static_cast<Rep>(date), kMaxSeconds);
    const Rep delta = date_s * 1000 - now_ms;
    return Millis(std::max<Rep>(delta, 0));
}

Millis clamp_retry_after(const RetryPolicy& policy, Millis retry_after) {
    const Millis max = std::max(policy.max, Millis(0));
    return std::clamp(retry_after, Millis(0), max);
}

}  // namespace outbox::core
