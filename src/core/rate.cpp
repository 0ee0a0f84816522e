#include "rate.hpp"

#include <algorithm>
#include <cmath>

namespace outbox::core {

bool rate_admit(RateState& state, int64_t now_us, double per_second, int64_t* wait_us) {
    auto interval = static_cast<int64_t>(std::llround(1e6 / per_second));
    if (interval < 1) interval = 1;
    // One request may come `interval` early: two may start together after
    // a pause, never more.
    int64_t earliest = state.next_us - interval;
    if (state.next_us != 0 && now_us < earliest) {
        *wait_us = earliest - now_us;
        return false;
    }
    state.next_us = std::max(state.next_us, now_us) + interval;
    *wait_us = 0;
    return true;
}

}  // namespace outbox::core
