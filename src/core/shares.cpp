#include "shares.hpp"

#include <algorithm>
#include <cmath>

namespace outbox::core {

std::size_t claim_window(std::size_t slots, std::size_t batch_size) { return slots + std::min(slots, batch_size); }

std::size_t free_slots(std::size_t window, std::size_t used) { return used >= window ? 0 : window - used; }

Share fair_share(std::size_t max_in_flight, std::size_t batch_size, std::size_t sharing,
                 std::size_t held_by_limited) {
    std::size_t left = max_in_flight > held_by_limited ? max_in_flight - held_by_limited : 1;
    sharing = std::max<std::size_t>(sharing, 1);
    std::size_t ahead = std::min(max_in_flight, batch_size);
    return Share{std::max<std::size_t>(1, left / sharing), ahead / sharing};
}

std::size_t endpoint_cap(int endpoint_max, std::size_t max_in_flight, std::size_t fair) {
    if (endpoint_max <= 0) return fair;
    return std::min(static_cast<std::size_t>(endpoint_max), max_in_flight);
}

std::size_t endpoint_claim_window(std::size_t cap, std::size_t ahead, double rate_limit) {
    std::size_t window = claim_window(cap, ahead);
    if (rate_limit > 0) window = std::min(window, static_cast<std::size_t>(std::ceil(rate_limit)) + 1);
    return window;
}

std::size_t claim_room(std::size_t held, std::size_t window, bool limited, std::size_t batch_size) {
    if (limited && held > window / 2) return 0;
    std::size_t free = held >= window ? 0 : window - held;
    return std::min(free, batch_size);
}

}  // namespace outbox::core
