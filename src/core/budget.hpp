// How the launcher divides the server's worker budget (outbox.max_workers)
// between the databases it serves, each asking for its outbox.workers.
// Pure arithmetic of counts, allocation-free, so that the launcher (plain
// PostgreSQL code) can call it.
#pragma once

#include <span>

namespace outbox::core {

// Fills `grants` (as long as `wants`) with the workers each database gets:
// every database at least one, even beyond `budget` (a database served by
// no worker would be a silent stall); what the budget has beyond one each
// is dealt one at a time to the databases still short, in turn, so that a
// short budget is shared as evenly as the wants allow (max-min fairness);
// never more than a database wants. A want below one counts as one.
void share_workers(std::span<const int> wants, std::span<int> grants, int budget) noexcept;

}  // namespace outbox::core
