// How a worker divides its request slots between endpoints, and how far
// ahead of them it claims: the arithmetic of pg/scheduler.cpp, which applies
// it to the endpoints it knows. Pure functions of counts.
//
// A worker has outbox.max_in_flight request slots. It claims up to a batch
// more than it can start (the claim window), so that a slot is refilled the
// moment its request finishes. Each endpoint without a limit of its own
// gets an equal share of the slots; one with a limit (rate_limit,
// max_in_flight) has its own cap instead.
#pragma once

#include <cstddef>

namespace outbox::core {

// How many deliveries may be claimed and not finished, for `slots`
// request slots (the worker's or one endpoint's share): the slots, and as
// many claimed ahead (at most a batch) waiting for one.
std::size_t claim_window(std::size_t slots, std::size_t batch_size);

// Of a window of `window` with `used` taken (in flight, ready, claimed in
// the open transaction), how many more may be claimed.
std::size_t free_slots(std::size_t window, std::size_t used);

// An endpoint's share of a worker: of its request slots, and of the
// claims it may hold ahead of them (the claim window's part beyond the
// slots).
struct Share {
    std::size_t slots;
    std::size_t ahead;
};

// Each endpoint gets an equal share of max_in_flight and of the claims
// ahead, so that one that hangs cannot take every slot from the others.
// The shares are rounded down: together they never hold more than the
// worker's window (claim_window), so an endpoint always finds its share
// free however long the others' requests take (up to max_in_flight
// endpoints: each has at least one slot, and none ahead when there are
// more endpoints than claims ahead). An endpoint with a limit (rate_limit,
// max_in_flight) takes no share: it has its own cap, and what it holds is
// left out of what the others share, so that a slow, limited endpoint does
// not halve the share of a fast one.
// `sharing`: endpoints that can be sent to and have no limit;
// `held_by_limited`: requests the limited ones have running or ready.
Share fair_share(std::size_t max_in_flight, std::size_t batch_size, std::size_t sharing,
                 std::size_t held_by_limited);

// How many requests of an endpoint this worker may have running: its own
// max_in_flight (`endpoint_max`, which limits_try_start() holds across
// workers; <= 0: none), at most the worker's, else the fair share `fair`.
std::size_t endpoint_cap(int endpoint_max, std::size_t max_in_flight, std::size_t fair);

// How many claims of an endpoint whose cap is `cap` may be held (running
// or waiting for a request slot): the cap and up to `ahead` more (its
// share's, or a batch for an endpoint with a limit), or for a rate-limited
// endpoint (`rate_limit` > 0) what it may be sent in a second, so that
// claims do not wait out their lease behind the limit.
std::size_t endpoint_claim_window(std::size_t cap, std::size_t ahead, double rate_limit);

// How many deliveries to claim for an endpoint that holds `held` (running
// and ready) of its window `window`, at most a batch. A limited endpoint is
// refilled once it has used half its window, not a row at a time as each
// request starts: every claim is a transaction.
std::size_t claim_room(std::size_t held, std::size_t window, bool limited, std::size_t batch_size);

}  // namespace outbox::core
