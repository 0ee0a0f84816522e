// What a worker holds between its transactions: the endpoints as it last
// loaded them, and every delivery it has claimed, at the stage it is in:
//
//   claimed ──► ready (waiting for a request slot) ──► in flight ──► finished (a result to record)
//                 └──────────── unsent (to hand back) ◄───┘ (a pipeline's rest)
//
// Plain data that the rooms of the worker (README.md) pass along: the
// scheduler reads it, sending moves claims from ready to in flight to
// finished, the step records and claims. No PostgreSQL calls here.
#pragma once

extern "C" {
#include "postgres.h"
#include "datatype/timestamp.h"
}

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "pg/claims.hpp"
#include "pg/endpoint.hpp"

namespace outbox::pg {

// An endpoint became failing or recovered (stats.hpp); told in the next
// transaction (outbox.note_endpoint_health).
struct HealthNote {
    int32 endpoint_id;
    bool failing;
    TimestampTz since;
    int32 consecutive_failures;
    std::string last_error;
};

struct Finished {
    InFlight delivery;
    const char* state;  // "pending", "delivered", "dead"
    int64 retry_in_ms = 0;
    int32 status = 0;
    std::string error;
    int64 duration_us = 0;
    std::string response;
    std::string response_headers;  // "name: value\n" lines
};

// What waits to be written in the next transaction (recording.hpp).
struct Results {
    std::vector<Finished> finished;
    TimestampTz keyed_since = DT_NOEND;  // the earliest made of its keyed deliveries; DT_NOEND: none
    Clock::time_point oldest{};          // when the first of `finished` came
    std::map<int32, std::string> gone;   // endpoints to disable, with the reason
    std::vector<HealthNote> health;      // endpoint health changes to tell

    void add(Finished f) {
        if (finished.empty()) oldest = Clock::now();
        if (f.delivery.keyed) keyed_since = std::min(keyed_since, f.delivery.created_at);
        finished.push_back(std::move(f));
    }

    bool keyed() const { return keyed_since != DT_NOEND; }  // a result in `finished` is of a keyed delivery
};

struct Holdings {
    std::map<int32, Endpoint> endpoints;
    std::map<int32, std::deque<Ready>> ready;  // claimed, waiting for a request slot
    std::unordered_map<std::uint64_t, InFlight> in_flight;
    Pipelines pipelines;                // claims behind a keyed request (claims.hpp)
    std::vector<InFlight> unsent;       // claims never sent, to hand back in the next transaction
    std::size_t claimed_pending = 0;    // claimed in the open transaction, not started yet
    Results results;

    std::size_t ready_count() const {
        std::size_t n = 0;
        for (const auto& [endpoint_id, queue] : ready) n += queue.size();
        return n;
    }

    std::size_t ready_of(int32 endpoint_id) const {
        auto it = ready.find(endpoint_id);
        return it == ready.end() ? 0 : it->second.size();
    }

    // Every claimed request not started yet goes back (the endpoints
    // changed), pipelines included.
    void hand_back_ready() {
        for (auto& [endpoint_id, queue] : ready)
            for (Ready& r : queue) unsent.push_back(std::move(r.delivery));
        ready.clear();
        pipelines.hand_back_all(unsent);
    }
};

}  // namespace outbox::pg
