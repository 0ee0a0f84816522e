#include "pg/housekeeping.hpp"

#include "pg/guard.hpp"
#include "pg/log.hpp"
#include "pg/queue.hpp"
#include "pg/transaction.hpp"
#include "pg/vacuum.hpp"

#include <fmt/format.h>

#include <chrono>

namespace outbox::pg {

namespace {

using std::chrono::milliseconds;

constexpr auto kPruneInterval = std::chrono::seconds(10);
// Nothing pruned and nothing recorded since the last round: an idle
// database, whose rows can only age past their retention. Looked at less
// often, so that an idle database costs next to nothing.
constexpr auto kIdlePruneInterval = std::chrono::seconds(60);
constexpr auto kPruneSlice = milliseconds(50);          // longest one prune round runs
constexpr auto kPruneBusyInterval = milliseconds(100);  // next round when one was not enough
constexpr int kPruneBatch = 1000;
constexpr int64 kTruncateMinBytes = 1 << 20;  // less is "near the starting size"; not worth a lock
// A drain this large (results written by worker 0) makes it look at the dead
// rows of outbox.deliveries once idle, and vacuum at this many.
constexpr std::size_t kVacuumAfterResults = 5000;
constexpr int64 kVacuumMinDeadRows = 10000;
constexpr int64 kVacuumBusyDeadRows = 100000;
constexpr auto kDeadCheckInterval = std::chrono::seconds(3);

}  // namespace

Housekeeping::Housekeeping(int slot, const Settings& settings, const Holdings& holdings, const core::Agenda& agenda)
    : slot_(slot), settings_(settings), holdings_(holdings), agenda_(agenda),
      next_prune_(slot == 0 ? Clock::now() + kPruneInterval : Clock::time_point::max()) {}

void Housekeeping::run() {
    if (Clock::now() >= next_prune_) prune();
    vacuum_when_needed();
}

// Every few seconds: move up parked heads whose wake-up a race lost (see
// outbox.unpark_heads), prune finished deliveries and events no endpoint
// matched in small batches, each its own transaction so that delivery is
// never held up for long. When one round's time was not enough, the next
// comes soon, at once if this worker has no requests to look after, so
// pruning keeps up with any delivery rate. Once nothing is left, the tables
// are truncated to give their space back.
void Housekeeping::prune() {
    auto started = Clock::now();
    int64 retention = settings_.retention_s;
    int64 dead_retention = settings_.dead_retention_s;
    int64 attempt_retention = settings_.attempt_retention_s;
    bool more = false;
    int64 pruned = 0;
    for (int round = 0;; round++) {
        int deleted = 0, swept = 0, attempts = 0, keys = 0;
        in_transaction("outbox: prune", [&] {
            if (!pg_call([] { return extension_installed(); })) return;
            pg_call([] { use_index_plans(); });
            if (round == 0) pg_call([] { return unpark_heads(); });
            deleted = pg_call([&] { return prune_deliveries(retention, dead_retention, kPruneBatch); });
            if (deleted < kPruneBatch)
                swept = pg_call([&] { return sweep_unmatched(retention, kPruneBatch, &sweep_cursor_); });
            attempts = pg_call([&] { return prune_attempts(attempt_retention, kPruneBatch); });
            keys = pg_call([&] { return prune_idempotency_keys(kPruneBatch); });
        });
        more = deleted == kPruneBatch || swept == kPruneBatch || attempts == kPruneBatch || keys == kPruneBatch;
        pruned += deleted + swept + attempts + keys;
        if (!more || Clock::now() - started >= kPruneSlice) break;
    }
    bool idle = pruned == 0 && recorded_since_prune_ == 0;
    recorded_since_prune_ = 0;
    // Idle: looked at already, unless the tables were empty but locked
    // then (autovacuum often is at work on them right after a drain).
    if (!more && (!idle || truncate_again_)) truncate_again_ = !truncate_when_empty();
    bool busy = !holdings_.in_flight.empty() || !holdings_.ready.empty();
    next_prune_ = Clock::now() + (more ? (busy ? kPruneBusyInterval : milliseconds(0))
                                       : idle && !truncate_again_ ? kIdlePruneInterval : kPruneInterval);
}

// Worker 0 has outbox.deliveries vacuumed when a drain has left many
// dead rows (vacuum.hpp says why): once idle after one, at 10,000; while
// one goes on, looking every few seconds, at 100,000 (each claim walks
// further over dead index entries, and autovacuum comes once a minute,
// throttled: a 1,000,000-event drain slowed from 19,000 to 8,700
// events/s).
void Housekeeping::vacuum_when_needed() {
    if (slot_ != 0) return;
    auto now = Clock::now();
    bool idle = holdings_.in_flight.empty() && holdings_.ready.empty() && holdings_.results.finished.empty() &&
                !agenda_.wants_claim();
    int64 threshold = 0;
    if (idle && recorded_since_vacuum_ >= kVacuumAfterResults) threshold = kVacuumMinDeadRows;
    else if (!idle && recorded_since_vacuum_ >= kVacuumAfterResults && now >= next_dead_check_)
        threshold = kVacuumBusyDeadRows;
    if (threshold == 0) return;
    next_dead_check_ = now + kDeadCheckInterval;
    int64 dead = 0;
    in_transaction("outbox: dead rows", [&] {
        if (pg_call([] { return extension_installed(); })) dead = pg_call([] { return deliveries_dead_tuples(); });
    });
    if (dead < threshold) {
        if (idle) recorded_since_vacuum_ = 0;
        return;
    }
    if (pg_call([] { return start_deliveries_vacuum(); })) {
        recorded_since_vacuum_ = 0;
        log_message(DEBUG1, fmt::format("outbox: {} dead rows in outbox.deliveries; vacuuming it", dead));
    }
}

// False when the tables looked empty but could not be locked at once.
bool Housekeeping::truncate_when_empty() {
    if (truncate_failed_) return true;
    int64 freed = 0;
    try {
        in_transaction("outbox: truncate", [&] {
            if (!pg_call([] { return extension_installed(); })) return;
            freed = pg_call([] { return truncate_if_empty(kTruncateMinBytes); });
        });
    } catch (const PgError& e) {
        truncate_failed_ = true;  // until restart: do not repeat the error every round
        log_message(WARNING, fmt::format("outbox worker: could not truncate the empty queue tables: {}", e.what()),
                    {}, "Their space is reused, not given back. A foreign key that references "
                        "outbox.events prevents the truncation.");
        return true;
    }
    if (freed < 0) return false;
    if (freed > 0)
        log_message(LOG, fmt::format("outbox: events and deliveries were empty; truncated them, "
                                     "giving back {} kB", freed / 1024));
    return true;
}

}  // namespace outbox::pg
