#include "pg/scheduler.hpp"

#include "core/shares.hpp"
#include "pg/guard.hpp"
#include "pg/limits.hpp"
#include "pg/shmem.hpp"

extern "C" {
#include "utils/timestamp.h"
}

#include <algorithm>

namespace outbox::pg {

namespace {

constexpr auto kLimitRecheck = std::chrono::milliseconds(5);  // an endpoint at max_in_flight through other workers

}  // namespace

std::size_t Scheduler::sendable_count(Clock::time_point now) const {
    return static_cast<std::size_t>(std::count_if(holdings_.endpoints.begin(), holdings_.endpoints.end(),
                                                  [&](const auto& entry) { return sendable(entry.second, now); }));
}

// Each endpoint gets an equal share of max_in_flight and of the claims
// ahead, so that one that hangs cannot take every slot from the others;
// one with a limit takes no share (core/shares.hpp).
core::Share Scheduler::share() const {
    auto now = Clock::now();
    std::size_t sharing = 0, held_by_limited = 0;
    for (const auto& [id, e] : holdings_.endpoints) {
        if (!sendable(e, now)) continue;
        if (e.limited()) held_by_limited += e.in_flight + holdings_.ready_of(id);
        else sharing++;
    }
    return core::fair_share(static_cast<std::size_t>(settings_.max_in_flight),
                            static_cast<std::size_t>(settings_.batch_size), sharing, held_by_limited);
}

std::size_t Scheduler::cap_of(const Endpoint& e, const core::Share& share) const {
    return core::endpoint_cap(e.max_in_flight, static_cast<std::size_t>(settings_.max_in_flight), share.slots);
}

std::size_t Scheduler::claim_window_of(const Endpoint& e, const core::Share& share) const {
    std::size_t ahead = e.limited() ? static_cast<std::size_t>(settings_.batch_size) : share.ahead;
    return core::endpoint_claim_window(cap_of(e, share), ahead, e.rate_limit);
}

// What their share of max_in_flight leaves free. A busy worker still claims
// in batches, because it claims when it records, and it records what
// finished in the last couple of milliseconds at once. The worker-wide
// limit is applied while claiming, to what each claim actually returned;
// the starting endpoint rotates so that none is always served last.
ClaimPlan Scheduler::claim_plan() {
    ClaimPlan plan;
    if (!agenda_.wants_claim() || settings_.paused || free_slots() == 0) return plan;
    core::Share fair = share();
    auto now = Clock::now();
    for (const auto& [id, e] : holdings_.endpoints) {
        if (!sendable(e, now)) continue;
        std::size_t held = e.in_flight + holdings_.ready_of(id);
        std::size_t free = core::claim_room(held, claim_window_of(e, fair), e.limited(),
                                            static_cast<std::size_t>(settings_.batch_size));
        if (free == 0) continue;
        plan.emplace_back(id, static_cast<int>(free));
    }
    if (!plan.empty()) {
        std::size_t first = claim_rotation_++ % plan.size();
        std::rotate(plan.begin(), plan.begin() + static_cast<std::ptrdiff_t>(first), plan.end());
    }
    return plan;
}

std::size_t Scheduler::free_slots() const {
    std::size_t window = core::claim_window(static_cast<std::size_t>(settings_.max_in_flight),
                                            static_cast<std::size_t>(settings_.batch_size));
    std::size_t used = holdings_.in_flight.size() + holdings_.ready_count() + holdings_.claimed_pending;
    return core::free_slots(window, used);
}

// If not, the endpoint is held until the rate allows one, or for a moment
// when other workers' requests fill max_in_flight (they tell nobody when
// one finishes).
bool Scheduler::admit(Endpoint& e, Clock::time_point now) {
    if (!e.limited()) return true;
    if (now < e.held_until) return false;
    int64 retry_in_us = 0;
    if (pg_call([&] { return limits_try_start(slot_, e.id, e.rate_limit, e.max_in_flight, &retry_in_us); }))
        return true;
    e.held_until = now + (retry_in_us > 0 ? std::chrono::microseconds(retry_in_us) : kLimitRecheck);
    return false;
}

void Scheduler::pause(Endpoint& endpoint, Clock::time_point until) {
    endpoint.paused_until = std::max(endpoint.paused_until, until);
    agenda_.look_by(until);
}

// The endpoint gets no request from any worker until the pause ends.
void Scheduler::adopt_shared_pauses() {
    EndpointPause pauses[kMaxEndpointPauses];
    int n = shared_endpoint_pauses(pauses);
    if (n == 0) return;
    TimestampTz now_ts = GetCurrentTimestamp();
    auto now = Clock::now();
    for (int i = 0; i < n; i++) {
        auto endpoint = holdings_.endpoints.find(pauses[i].endpoint_id);
        if (endpoint == holdings_.endpoints.end()) continue;
        pause(endpoint->second, now + std::chrono::microseconds(pauses[i].until - now_ts));
    }
}

}  // namespace outbox::pg
