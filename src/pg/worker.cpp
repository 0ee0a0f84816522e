// The delivery worker: one process per outbox.workers slot of a served
// database (the launcher starts it there, by OID). Each round: move HTTP
// transfers and broker publishes on; in one short transaction record
// finished ones, turn newly committed events into deliveries (dispatch) and
// claim due deliveries, up to a batch more than the free request slots;
// start claimed requests after it commits and whenever a slot frees; then
// sleep on the latch, the HTTP sockets and the broker sinks (pg/sinks.hpp:
// deliveries to nats://, amqp://, redis:// endpoints are published through
// them and decided like HTTP responses).
//
// This file is the loop. Each concern is a room that the loop owns and
// calls (src/pg/README.md draws them):
//
//   core/agenda.hpp    when to look for work
//   scheduler.cpp      who may send now: shares, claim windows, limits, pauses
//   sending.cpp        requests and publishes: start, finish, count
//   step.cpp           the transaction: record, hand back, dispatch, claim
//   housekeeping.cpp   prune, truncate, vacuum (worker 0)
//   holdings.hpp       what they pass along: endpoints, claims, results
#include "pg/worker.hpp"

#include "core/agenda.hpp"
#include "pg/compat.hpp"
#include "pg/guard.hpp"
#include "pg/gucs.hpp"
#include "pg/holdings.hpp"
#include "pg/housekeeping.hpp"
#include "pg/limits.hpp"
#include "pg/log.hpp"
#include "pg/recording.hpp"
#include "pg/scheduler.hpp"
#include "pg/sending.hpp"
#include "pg/settings.hpp"
#include "pg/shmem.hpp"
#include "pg/stats.hpp"
#include "pg/step.hpp"
#include "pg/transaction.hpp"
#include "pg/vacuum.hpp"
#include "pg/wait_events.hpp"
#include "pg/worker_session.hpp"

extern "C" {
#include "commands/async.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/wait_event.h"
}

#include <fmt/format.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace outbox::pg {

namespace {

using std::chrono::milliseconds;

constexpr int kMaxConsecutiveErrors = 5;
constexpr milliseconds kOtherWorkersPoll{60000};
constexpr auto kTrimInterval = std::chrono::seconds(10);  // between give_back_memory()'s trims

class Worker {
public:
    explicit Worker(int slot) : slot_(slot), settings_(load_settings()) {
        // Requests a previous run of this slot counted against endpoint
        // limits ended with it.
        pg_call([&] { limits_forget_worker(slot_); });
        follow_database();
        make_wait_set();
    }

    // What the worker does, round after round, until SIGTERM.
    void run() {
        log_message(LOG, fmt::format("outbox worker {} started, delivering events of database \"{}\"",
                                     slot_, worker_database_name()));
        listen(settings_.channel);
        listen_for_commits();
        while (!ShutdownRequestPending) {
            take_interrupts();                    // SIGHUP: reload; NOTIFY: look for work
            sending_.perform();                   // requests and publishes move on
            sending_.collect_completed();         // those that ended become results
            scheduler_.adopt_shared_pauses();     // another worker's 429/503 holds here too
            sending_.start_ready();               // claimed requests into free slots
            sending_.publish_in_flight_counts();  // for outbox.stats
            try {
                transact_and_keep_house();        // record, dispatch, claim; prune, vacuum
            } catch (const PgError& e) {
                log_message(WARNING, fmt::format("outbox worker: {}", e.what()), e.detail(), e.hint());
                agenda_.back_off(Clock::now());
                step_.forget_endpoints();  // reload them after an error
            }
            if (leaves_without_extension() && step_.extension_missing()) {
                report_extension(ExtensionFound::Absent);  // DROP EXTENSION: the launcher stops serving it
                break;
            }
            give_back_memory();                   // once idle after a burst
            wait();                               // latch, sockets, the earliest timer
        }
        shutdown();
    }

private:
    void take_interrupts() {
        pg_call([] { CHECK_FOR_INTERRUPTS(); });
        if (ConfigReloadPending) reload();
        follow_pause();
        if (notifyInterruptPending) {
            // NOTIFY on our channel: consume the queue (so it can be
            // truncated) and look for work.
            pg_call([] { ProcessNotifyInterrupt(false); });
            agenda_.wake();
        }
    }

    // The database's part of a round, unless backing off after an error.
    void transact_and_keep_house() {
        auto now = Clock::now();
        if (agenda_.backing_off(now)) return;
        agenda_.check_timers(now, settings_.poll_interval);
        try {
            if (step_.due()) {
                Step::Done done = step_.run();
                housekeeping_.count_recorded(done.recorded);
                if (done.claimed) sending_.start_ready();  // what it claimed, now that it is committed
            }
            housekeeping_.run();
            consecutive_errors_ = 0;
        } catch (const PgError&) {
            // A batch of results that cannot be written must not block the
            // worker forever: its deliveries come back after the lease.
            std::vector<Finished>& finished = holdings_.results.finished;
            if (++consecutive_errors_ >= kMaxConsecutiveErrors && !finished.empty()) {
                log_message(WARNING, fmt::format("outbox worker: dropping {} unrecorded results after "
                                                 "repeated errors; they will be retried after the lease",
                                                 finished.size()));
                finished.clear();
            }
            if (consecutive_errors_ >= kMaxConsecutiveErrors) holdings_.unsent.clear();  // back after the lease
            throw;
        }
    }

    // What differs from the settings in this database and this worker:
    // outbox.paused as set for the database; and the poll, which only the
    // first worker needs (commits wake it, and it wakes the others when
    // there is more than it can take): the others poll rarely, as a safety
    // net, so that an idle database costs one poll, not one per worker.
    void follow_database() {
        settings_.paused = database_paused();
        if (slot_ > 0) settings_.poll_interval = std::max(settings_.poll_interval, kOtherWorkersPoll);
    }

    // outbox.paused of this database: its own (ALTER DATABASE ... SET),
    // which the first worker reads again when a commit changed it, else the
    // server's.
    void follow_pause() {
        if (slot_ == 0 && database_settings_stale()) {
            try {
                in_transaction("outbox: reading the database's settings",
                               [] { pg_call([] { publish_database_settings(read_database_settings()); }); });
            } catch (const PgError& e) {  // read again at the next round
                log_message(WARNING, fmt::format("outbox worker: reading the database's settings: {}", e.what()));
            }
        }
        bool paused = database_paused();
        if (paused == settings_.paused) return;
        settings_.paused = paused;
        listen_for_commits();
        agenda_.look_again();
    }

    void reload() {
        ConfigReloadPending = false;
        pg_call([] { ProcessConfigFile(PGC_SIGHUP); });
        std::string old_channel = settings_.channel;
        settings_ = load_settings();
        follow_database();
        sending_.reload();
        listen_for_commits();
        step_.settings_changed();
        if (settings_.channel != old_channel) {
            in_transaction("outbox: unlisten", [&] { pg_call([&] { Async_Unlisten(old_channel.c_str()); }); });
            listen(settings_.channel);
        }
        step_.forget_endpoints();  // the default endpoint's URL or secret may have changed
        agenda_.look_again();
    }

    // Committing transactions set the latches that are published. A paused
    // worker withdraws its own, so that producers do not wake it (and pay a
    // signal) at every commit for nothing.
    void listen_for_commits() {
        if (settings_.paused) withdraw_worker_latch(slot_);
        else publish_worker_latch(slot_, MyLatch);
    }

    void listen(const std::string& channel) {
        in_transaction("outbox: listen", [&] { pg_call([&] { Async_Listen(channel.c_str()); }); });
    }

    // The latch, the postmaster, the HTTP client and each broker sink (one
    // epoll descriptor each): made again whenever the sinks change.
    void make_wait_set() {
        std::vector<int> fds = sending_.fds();
        pg_call([&] {
            if (wait_set_ != nullptr) FreeWaitEventSet(wait_set_);
            wait_set_ = compat::create_process_wait_event_set(2 + static_cast<int>(fds.size()));
            AddWaitEventToSet(wait_set_, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, nullptr);
            AddWaitEventToSet(wait_set_, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, nullptr, nullptr);
            for (int fd : fds) AddWaitEventToSet(wait_set_, WL_SOCKET_READABLE, fd, nullptr, nullptr);
        });
        wait_events_ = 2 + fds.size();
    }

    long wait_timeout_ms() {
        auto now = Clock::now();
        if (!agenda_.backing_off(now) && step_.due()) return 0;
        auto deadline = std::min({agenda_.claim_deadline(), housekeeping_.next_prune(), step_.secrets_change_at(),
                                  sending_.limits_wake(), agenda_.dispatch_retry_at(), step_.flush_by()});
        if (agenda_.backing_off(now)) deadline = std::max(deadline, agenda_.error_until());
        // Rounded up, as the HTTP client's is: truncated, the last
        // millisecond before a deadline (a result's flush, a retry) was a
        // loop of zero-timeout waits.
        auto timeout = sending_.timeout(std::chrono::ceil<milliseconds>(deadline - now));
        return std::max<long>(0, static_cast<long>(timeout.count()));
    }

    void wait() {
        if (sending_.take_fds_changed()) make_wait_set();
        long timeout = wait_timeout_ms();
        std::vector<WaitEvent> events(wait_events_);
        int n = pg_call([&] {
            return WaitEventSetWait(wait_set_, timeout, events.data(), static_cast<int>(events.size()),
                                    holdings_.in_flight.empty() ? wait_event_worker_idle() : wait_event_worker_http());
        });
        for (int i = 0; i < n; i++) {
            if (events[i].events & WL_LATCH_SET) {
                pg_call([] { ResetLatch(MyLatch); });
                // Another worker asking to share its work, or a commit with
                // new events (which the dispatch leases: no claim).
                if (take_claim_request(slot_)) agenda_.wake();
                else agenda_.commit_woke();
            }
        }
    }

    // glibc keeps what a burst freed (the main heap's free pages, the
    // connect threads' arenas) for later, and the worker's private memory
    // stays at the burst's peak: a hostile burst left about 5 MiB there.
    // Once nothing is in flight or waiting, it is given back; at most every
    // kTrimInterval, as a moderate rate makes the worker idle between
    // events (malloc_trim walks every arena: a fraction of a millisecond).
    void give_back_memory() {
        if (!holdings_.in_flight.empty() || !holdings_.ready.empty()) {
            busy_since_trim_ = true;
            return;
        }
        auto now = Clock::now();
        if (!busy_since_trim_ || now < next_trim_) return;
        malloc_trim(0);
        busy_since_trim_ = false;
        next_trim_ = now + kTrimInterval;
    }

    // Clean stop (SIGTERM): write what finished, and hand unfinished claims
    // back at once instead of letting them wait for the lease.
    void shutdown() {
        sending_.perform();
        sending_.collect_completed();
        std::vector<InFlight> unfinished;
        for (const auto& [tag, d] : holdings_.in_flight) unfinished.push_back(d);
        holdings_.hand_back_ready();
        try {
            in_transaction("outbox: shutdown", [&] {
                if (!pg_call([] { return extension_installed(); })) return;
                record(holdings_.results.finished);
                release(unfinished, unfinished.size(), false);
                release(holdings_.unsent, holdings_.unsent.size(), true);
            });
        } catch (const PgError& e) {
            log_message(WARNING, fmt::format("outbox worker: on shutdown: {}", e.what()));
        }
        // What it counted in flight and against limits ends with it; its
        // vacuum would keep the database from being dropped.
        pg_call([&] {
            limits_forget_worker(slot_);
            stats_forget_worker(slot_);
            stop_deliveries_vacuum();
        });
        log_message(LOG, fmt::format("outbox worker {} stopped", slot_));
    }

    // The rooms, each depending only on those above it.
    int slot_;
    Settings settings_;  // reloaded in place: the rooms hold a reference
    Holdings holdings_;
    core::Agenda agenda_{Clock::now()};
    Scheduler scheduler_{slot_, settings_, holdings_, agenda_};
    Sending sending_{slot_, settings_, holdings_, scheduler_};
    Step step_{slot_, settings_, holdings_, agenda_, scheduler_, sending_};
    Housekeeping housekeeping_{slot_, settings_, holdings_, agenda_};
    int consecutive_errors_ = 0;
    bool busy_since_trim_ = false;
    Clock::time_point next_trim_{};
    std::size_t wait_events_ = 3;
    WaitEventSet* wait_set_ = nullptr;
};

void withdraw_latch(int, Datum arg) {
    withdraw_worker_latch(DatumGetInt32(arg));
    unregister_worker_process(DatumGetInt32(arg));
}

WorkerStart start;  // as the launcher gave it

// Whether to serve the database: the extension is there (or, serving named
// databases, the worker waits for it as before). The first worker reads
// the settings made for the database first. Without it the worker
// tells the launcher and leaves, without a word: most databases of a
// server have no outbox.
bool look_for_extension(int slot) {
    bool found = false;
    in_transaction("outbox: looking for the extension", [&] {
        found = pg_call([] { return extension_state(nullptr) != ExtensionState::Missing; });
        if (slot == 0 && (found || !start.leave_without_extension))
            pg_call([] { publish_database_settings(read_database_settings()); });
    });
    if (!found && start.leave_without_extension) {
        report_extension(ExtensionFound::Absent);
        return false;
    }
    report_extension(ExtensionFound::Present);
    return true;
}

}  // namespace

const char* worker_database_name() { return NameStr(start.name); }
bool leaves_without_extension() { return start.leave_without_extension; }

}  // namespace outbox::pg

extern "C" PGDLLEXPORT void outbox_worker_main(Datum arg) {
    using namespace outbox::pg;
    int slot = DatumGetInt32(arg);
    memcpy(&start, MyBgworkerEntry->bgw_extra, sizeof(start));
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
    // hiredis and rabbitmq-c write to sockets with write(2)/send(2): a
    // broker that closed its end must give EPIPE, not kill the worker.
    // (Background workers inherit SIG_IGN from the postmaster; made sure.)
    pqsignal(SIGPIPE, SIG_IGN);
    BackgroundWorkerUnblockSignals();
    // By OID: a rename (the launcher stops the workers around it) does not
    // matter; a database that refuses connections is refused here too.
    BackgroundWorkerInitializeConnectionByOid(start.database, InvalidOid, 0);
    if (!attach_worker(start.entry)) proc_exit(0);  // started by a launcher that is gone
    set_up_worker_session();  // worker_session.cpp: plans, isolation, search_path, commits
    pgstat_report_appname("outbox worker");
    before_shmem_exit(withdraw_latch, Int32GetDatum(slot));
    register_worker_process(slot, MyLatch);  // settings changes wake it, paused or not
    report_exceptions("outbox worker", [&] {
        if (!look_for_extension(slot)) return;
        Worker worker(slot);
        worker.run();
    });
    proc_exit(0);
}
