// Writing what the worker learnt, inside its transaction: attempts'
// results (outbox.record), claims handed back (outbox.release_claims),
// endpoints that answered 410 and changes of endpoints' health. C++ that
// calls PostgreSQL through pg_call(); call inside a worker transaction
// (transaction.hpp). Whatever else a delivery's end must write in the
// same transaction belongs here too.
#pragma once

#include <cstddef>
#include <vector>

#include "pg/claims.hpp"
#include "pg/holdings.hpp"

namespace outbox::pg {

// Writes the attempts' results in one statement. Returns how many finished
// keys have a pending delivery behind them (record_results' `unblocked`).
int record(const std::vector<Finished>& finished);

// Writes everything `results` holds: the attempts' results, the endpoints
// to disable (410 Gone) and the health changes to tell. Returns record()'s
// count.
int write_results(const Results& results);

// Hands the first `count` claims back (outbox.release_claims); `never_sent`:
// their attempt is not counted.
void release(const std::vector<InFlight>& claims, std::size_t count, bool never_sent);

}  // namespace outbox::pg
