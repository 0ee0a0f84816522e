// Claiming inside the worker's transaction: leasing new deliveries as the
// dispatch makes them (outbox.dispatch_and_lease) and claiming due ones
// (outbox.claim), then building each claimed delivery's request (HTTP) or
// message (broker). A keyed delivery's first row is started like any claim;
// the rows behind it form its pipeline (claims.hpp), attached once the
// transaction commits. Call inside a worker transaction (transaction.hpp).
#pragma once

extern "C" {
#include "postgres.h"
}

#include <cstdint>
#include <deque>
#include <map>
#include <utility>
#include <vector>

#include "pg/claims.hpp"
#include "pg/holdings.hpp"
#include "pg/queue.hpp"
#include "pg/scheduler.hpp"
#include "pg/settings.hpp"

namespace outbox::pg {

class Claimer {
public:
    // Rows are read into `query_cxt`, which the caller resets after each transaction.
    Claimer(const Settings& settings, Holdings& holdings, Scheduler& scheduler, MemoryContext query_cxt)
        : settings_(settings), holdings_(holdings), scheduler_(scheduler), query_cxt_(query_cxt) {}

    // A new transaction: nothing claimed in it yet.
    void begin();

    // Dispatches up to `limit` events, and leases at once what `plan` would
    // claim of the new deliveries of unlimited endpoints; counts them per
    // endpoint in `leased`, and in `left_due` the new deliveries it left
    // for a claim. Returns how many events it dispatched (-1: another worker
    // was dispatching).
    int dispatch_and_lease(int limit, const ClaimPlan& plan, std::vector<Ready>& claimed,
                           std::map<int32, int>& leased, int* left_due);

    // Claims up to `limit` due deliveries of the endpoint, with their
    // pipelines; returns how many went to `claimed`.
    int claim_into(int32 endpoint_id, int limit, std::vector<Ready>& claimed);

    // After the commit: the claims wait for a request slot (holdings.ready),
    // the pipelines behind their heads.
    void hand_over(std::vector<Ready>& claimed);

private:
    int lease_ms_of(const Endpoint& e) const;
    int adopt_claims(const ClaimedRow* rows, int n, std::vector<Ready>& claimed);

    const Settings& settings_;
    Holdings& holdings_;
    Scheduler& scheduler_;
    MemoryContext query_cxt_;
    std::uint64_t last_tag_ = 0;
    // Pipelines claimed in the open transaction, attached once it commits.
    std::vector<std::pair<std::uint64_t, std::deque<Ready>>> claimed_pipelines_;
};

}  // namespace outbox::pg
