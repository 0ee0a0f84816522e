// Housekeeping, by worker 0 only (two workers would pick the same oldest
// rows and wait on each other): pruning what retention no longer keeps
// (prune.hpp), truncating the queue tables once they are empty, and having
// outbox.deliveries vacuumed after a drain (vacuum.hpp). Each in its own
// short transactions, between the worker's rounds, so that delivery is
// never held up for long.
#pragma once

#include <cstddef>

#include "core/agenda.hpp"
#include "pg/holdings.hpp"
#include "pg/prune.hpp"
#include "pg/settings.hpp"

namespace outbox::pg {

class Housekeeping {
public:
    Housekeeping(int slot, const Settings& settings, const Holdings& holdings, const core::Agenda& agenda);

    // What is due of it now; throws PgError when a transaction fails.
    void run();

    // The step wrote `n` results (each leaves a dead row behind).
    void count_recorded(std::size_t n) {
        recorded_since_vacuum_ += n;
        recorded_since_prune_ += n;
    }

    // When the next prune round is due (max: never, for the other workers).
    Clock::time_point next_prune() const { return next_prune_; }

private:
    void prune();
    void vacuum_when_needed();
    bool truncate_when_empty();

    int slot_;
    const Settings& settings_;
    const Holdings& holdings_;
    const core::Agenda& agenda_;
    // Housekeeping is worker 0's (see prune()); the others never get to it.
    Clock::time_point next_prune_;
    SweepCursor sweep_cursor_;
    bool truncate_failed_ = false;
    bool truncate_again_ = false;  // empty, but locked by someone (autovacuum, a reader): try next round
    std::size_t recorded_since_vacuum_ = 0;  // results this worker wrote since it last looked at dead rows
    std::size_t recorded_since_prune_ = 0;   // results this worker wrote since its last prune
    Clock::time_point next_dead_check_{};    // while busy, the dead rows are looked at no sooner
};

}  // namespace outbox::pg
