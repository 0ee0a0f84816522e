// A rate limit as the generic cell rate algorithm: one timestamp per limited
// endpoint (the "theoretical arrival time" of the next request), so it fits
// in shared memory and every worker takes from the same allowance. Requests
// are spaced evenly, 1/rate apart, with room for at most one more at once:
// smooth rather than bursty. Not synchronised: the caller holds a lock.
#pragma once

#include <cstdint>

namespace outbox::core {

struct RateState {
    int64_t next_us;  // the theoretical arrival time of the next request; 0: none yet
};

// Whether a request may start at `now_us` under `per_second`; if so it takes
// its place. If not, *wait_us says how long until one may.
bool rate_admit(RateState& state, int64_t now_us, double per_second, int64_t* wait_us);

}  // namespace outbox::core
