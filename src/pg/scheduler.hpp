// Who may send now: the worker's request slots and each endpoint's share
// of them (core/shares.hpp), what to claim for which endpoint, the limits
// every worker shares (rate_limit, max_in_flight: limits.hpp) and the
// pauses endpoints ask for (429/503 Retry-After). Reads what the worker
// holds (holdings.hpp); a pause also tells the agenda when to look again.
#pragma once

extern "C" {
#include "postgres.h"
}

#include <cstddef>
#include <utility>
#include <vector>

#include "core/agenda.hpp"
#include "core/shares.hpp"
#include "pg/endpoint.hpp"
#include "pg/holdings.hpp"
#include "pg/settings.hpp"

namespace outbox::pg {

// Which endpoints to claim for, and at most how many each.
using ClaimPlan = std::vector<std::pair<int32, int>>;

class Scheduler {
public:
    Scheduler(int slot, const Settings& settings, Holdings& holdings, core::Agenda& agenda)
        : slot_(slot), settings_(settings), holdings_(holdings), agenda_(agenda) {}

    // Whether an endpoint can be sent to now.
    static bool sendable(const Endpoint& e, Clock::time_point now) {
        return e.enabled && !e.url.empty() && now >= e.paused_until;
    }
    std::size_t sendable_count(Clock::time_point now) const;

    // The fair share of an endpoint without a limit (core::fair_share).
    core::Share share() const;
    // How many requests of `e` this worker may have running: its own
    // max_in_flight (which limits_try_start() holds across workers), else
    // its share of the slots.
    std::size_t cap_of(const Endpoint& e, const core::Share& share) const;
    // How many claims of `e` may be held, running or waiting for a request
    // slot (core::endpoint_claim_window).
    std::size_t claim_window_of(const Endpoint& e, const core::Share& share) const;

    // Which endpoints to claim for now, and at most how many each.
    ClaimPlan claim_plan();
    // How many more deliveries the worker may claim.
    std::size_t free_slots() const;

    // Whether the endpoint's limits (rate_limit, max_in_flight, across
    // workers) let one more request start now; if not, e.held_until says
    // when to ask again.
    bool admit(Endpoint& e, Clock::time_point now);

    // An endpoint asked for a pause (429/503 Retry-After), here or in
    // another worker: nothing is claimed or sent for it until `until`, and
    // the worker looks for its work again then.
    void pause(Endpoint& endpoint, Clock::time_point until);
    // A pause another worker was asked for holds here too.
    void adopt_shared_pauses();

private:
    int slot_;
    const Settings& settings_;
    Holdings& holdings_;
    core::Agenda& agenda_;
    std::size_t claim_rotation_ = 0;
};

}  // namespace outbox::pg
