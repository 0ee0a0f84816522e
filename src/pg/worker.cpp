// The delivery worker: one process per outbox.workers slot, connected to
// outbox.database. Each loop: move HTTP transfers on; in one short
// transaction record finished ones, turn newly committed events into
// deliveries (dispatch) and claim due deliveries, up to a batch more than
// the free request slots; start claimed requests after it commits and
// whenever a slot frees; then sleep on the latch, the HTTP sockets and the
// broker sinks (pg/sinks.hpp: deliveries to nats://, amqp://, redis://
// endpoints are published through them and decided like HTTP responses).
#include "pg/worker.hpp"

#include "core/agenda.hpp"
#include "core/headers.hpp"
#include "core/outcome.hpp"
#include "http/client.hpp"
#include "pg/claims.hpp"
#include "pg/compat.hpp"
#include "pg/gucs.hpp"
#include "pg/endpoint.hpp"
#include "pg/guard.hpp"
#include "pg/holdings.hpp"
#include "pg/housekeeping.hpp"
#include "pg/limits.hpp"
#include "pg/log.hpp"
#include "pg/queue.hpp"
#include "pg/recording.hpp"
#include "pg/replan.hpp"
#include "pg/scheduler.hpp"
#include "pg/sending.hpp"
#include "pg/settings.hpp"
#include "pg/shmem.hpp"
#include "pg/sinks.hpp"
#include "pg/stats.hpp"
#include "pg/transaction.hpp"
#include "pg/wait_events.hpp"

extern "C" {
#include "commands/async.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <chrono>
#include <ctime>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace outbox::pg {

namespace {

using std::chrono::milliseconds;

constexpr auto kFlushDelay = milliseconds(5);  // longest a finished result waits to be recorded
constexpr int kMaxConsecutiveErrors = 5;
// A claim brings up to this many batches (outbox.batch_size) of deliveries
// behind its keyed heads (Pipelines): a hot key then needs one transaction
// per thousand events instead of one per event.
constexpr int kPipelineBatches = 10;

class Worker {
public:
    explicit Worker(int slot)
        : slot_(slot), settings_(load_settings()) {
        query_cxt_ = pg_call([] {
            return AllocSetContextCreate(TopMemoryContext, "outbox worker queries", ALLOCSET_DEFAULT_SIZES);
        });
        // Requests a previous run of this slot counted against endpoint
        // limits ended with it.
        pg_call([&] { limits_forget_worker(slot_); });
        make_wait_set();
    }

    void run() {
        log_message(LOG, fmt::format("outbox worker {} started, delivering events of database \"{}\"",
                                     slot_, guc_database));
        listen(settings_.channel);
        listen_for_commits();
        while (!ShutdownRequestPending) {
            pg_call([] { CHECK_FOR_INTERRUPTS(); });
            if (ConfigReloadPending) reload();
            if (notifyInterruptPending) {
                // NOTIFY on our channel: consume the queue (so it can be
                // truncated) and look for work.
                pg_call([] { ProcessNotifyInterrupt(false); });
                agenda_.wake();
            }
            sending_.perform();
            sending_.collect_completed();
            scheduler_.adopt_shared_pauses();
            sending_.start_ready();
            sending_.publish_in_flight_counts();
            try {
                step();
            } catch (const PgError& e) {
                log_message(WARNING, fmt::format("outbox worker: {}", e.what()), e.detail(), e.hint());
                agenda_.back_off(Clock::now());
                endpoints_version_.clear();  // reload them after an error
            }
            wait();
        }
        shutdown();
    }

private:
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

    void reload() {
        ConfigReloadPending = false;
        pg_call([] { ProcessConfigFile(PGC_SIGHUP); });
        std::string old_channel = settings_.channel;
        settings_ = load_settings();
        sending_.reload();
        listen_for_commits();
        url_missing_logged_ = false;
        if (settings_.channel != old_channel) {
            in_transaction("outbox: unlisten", [&] { pg_call([&] { Async_Unlisten(old_channel.c_str()); }); });
            listen(settings_.channel);
        }
        endpoints_version_.clear();  // the default endpoint's URL or secret may have changed
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

    // Once per configuration: say that the default endpoint is off.
    void note_url_missing() {
        if (settings_.url.empty() && !url_missing_logged_) {
            log_message(LOG, "outbox.url is not set: the default endpoint receives nothing until it is", {},
                        "Set outbox.url in postgresql.conf and reload, or create endpoints with "
                        "outbox.create_endpoint().");
            url_missing_logged_ = true;
        }
    }

    // Results wait up to kFlushDelay to be written together, usually with
    // the next commit's dispatch and claim: at a moderate rate that is one
    // transaction per event instead of two. A keyed result is written as
    // soon as the worker is idle: the next delivery of its key may be
    // parked until then.
    bool should_flush() const {
        if (holdings_.results.finished.empty()) return false;
        return holdings_.results.finished.size() >= static_cast<std::size_t>(settings_.batch_size) ||
               (holdings_.in_flight.empty() && holdings_.results.keyed) || Clock::now() - holdings_.results.oldest >= kFlushDelay;
    }

    bool should_transact() {
        if (should_flush() || !holdings_.unsent.empty()) return true;
        if (!agenda_.wants_claim() || settings_.paused) return false;
        // Before the endpoints are known, or while none of those it knows
        // can be sent to (all disabled, paused or without a URL), a
        // transaction is how the worker learns of one created or enabled:
        // each wake-up (their functions NOTIFY) and each poll makes one.
        auto now = Clock::now();
        return endpoints_version_.empty() || now >= secrets_change_at_ || !scheduler_.claim_plan().empty() ||
               scheduler_.sendable_count(now) == 0;
    }

    void step() {
        auto now = Clock::now();
        if (agenda_.backing_off(now)) return;
        agenda_.check_timers(now, settings_.poll_interval);
        try {
            if (should_transact()) deliver_transaction();
            housekeeping_.run();
            consecutive_errors_ = 0;
        } catch (const PgError&) {
            // A batch of results that cannot be written must not block the
            // worker forever: its deliveries come back after the lease.
            if (++consecutive_errors_ >= kMaxConsecutiveErrors && !holdings_.results.finished.empty()) {
                log_message(WARNING, fmt::format("outbox worker: dropping {} unrecorded results after "
                                                 "repeated errors; they will be retried after the lease",
                                                 holdings_.results.finished.size()));
                holdings_.results.finished.clear();
            }
            if (consecutive_errors_ >= kMaxConsecutiveErrors) holdings_.unsent.clear();  // back after the lease
            throw;
        }
    }

    // One short transaction: record finished attempts (and disable endpoints
    // that answered 410), dispatch new events, claim due deliveries. The
    // claimed requests start only after it commits.
    void deliver_transaction() {
        std::vector<Ready> claimed;
        std::size_t handing_back = holdings_.unsent.size();
        ExtensionState extension = ExtensionState::Missing;
        char installed_version[kVersionLength] = "";
        core::Agenda::Found found;
        found.dispatch_limit = settings_.batch_size * 10;
        bool flush = !holdings_.results.finished.empty();
        // A retry written changes the earliest due time; it stays to be
        // looked up until a transaction does (one whose claim came back
        // full skips it).
        if (std::any_of(holdings_.results.finished.begin(), holdings_.results.finished.end(),
                        [](const Finished& f) { return std::string_view(f.state) == "pending"; }))
            agenda_.retry_written();
        bool active = !settings_.paused;
        if (active) note_url_missing();
        holdings_.claimed_pending = 0;
        claimed_pipelines_.clear();
        // Recording may unblock keys (a head delivered or dead) and changes
        // the next due time: look for work in the same transaction.
        if (flush) agenda_.claim_after_recording();
        in_transaction("outbox: record and claim", [&] {
            extension = pg_call([&] { return extension_state(installed_version); });
            if (extension != ExtensionState::Current) return;
            if (flush) write_results(holdings_.results);
            if (handing_back > 0) release(holdings_.unsent, handing_back, true);
            if (!active) return;
            pg_call([] { replan_if_grown(); });
            refresh_endpoints();
            ClaimPlan plan = scheduler_.claim_plan();
            std::map<int32, int> leased;  // per endpoint, by the dispatch
            // Only when events may have come: a transaction that just
            // records (a busy key's pipeline makes hundreds a second) skips it.
            if (agenda_.dispatch_due())
                found.dispatched = dispatch_and_lease(found.dispatch_limit, plan, claimed, leased);
            for (auto [endpoint_id, limit] : plan) {
                int room = static_cast<int>(scheduler_.free_slots());
                if (room == 0) break;
                int asked = std::min(limit - leased[endpoint_id], room);
                if (asked <= 0) {
                    found.claimed_full = true;  // the dispatch leased all it could: probably more
                    continue;
                }
                int got = claim_into(endpoint_id, asked, claimed);
                holdings_.claimed_pending += static_cast<std::size_t>(got);
                // A full claim says there is probably more to claim, so the
                // other workers are woken; not for a limited endpoint, whose
                // window is small and whose limit holds for all workers.
                if (got == asked && !holdings_.endpoints.at(endpoint_id).limited()) found.claimed_full = true;
            }
            // The earliest retry changes when this worker writes one (other
            // workers watch their own), and is looked up again at each poll.
            if (!found.claimed_full && agenda_.next_due_stale())
                found.next_due_ms = pg_call([] { return ms_until_next_due(); });
        });
        holdings_.claimed_pending = 0;  // started below, or dropped with the failed transaction
        pg_call([&] { MemoryContextReset(query_cxt_); });
        if (!note_extension(extension, installed_version)) {
            // Without the extension (or with a schema this library does not
            // know) nothing we hold can be written back; look again at the
            // next poll.
            holdings_.results.finished.clear();
            holdings_.results.gone.clear();
            holdings_.results.health.clear();
            agenda_.stop_claiming();
            endpoints_version_.clear();
            return;
        }
        if (flush) {
            housekeeping_.count_recorded(holdings_.results.finished.size());
            holdings_.results.finished.clear();
            holdings_.results.keyed = false;
            holdings_.results.gone.clear();
            holdings_.results.health.clear();
        }
        holdings_.unsent.erase(holdings_.unsent.begin(), holdings_.unsent.begin() + static_cast<std::ptrdiff_t>(handing_back));
        if (!active) return;
        if (agenda_.after_transaction(Clock::now(), settings_.poll_interval, found)) wake_other_workers(slot_);
        for (Ready& r : claimed) {
            holdings_.ready[r.delivery.endpoint_id].push_back(std::move(r));
        }
        for (auto& [tag, rest] : claimed_pipelines_) holdings_.pipelines.attach(tag, std::move(rest));
        claimed_pipelines_.clear();
        sending_.start_ready();
    }

    // Reloads the endpoints when their configuration changed or a rotated
    // secret expired. Keeps each endpoint's in-flight count and pause.
    void refresh_endpoints() {
        char* version_text = pg_call([&] { return endpoints_version(query_cxt_); });
        std::string version = version_text ? version_text : "";
        if (version == endpoints_version_ && Clock::now() < secrets_change_at_) return;
        // Requests claimed ahead were built with the old URL, secrets and headers.
        holdings_.hand_back_ready();
        EndpointRow* rows = nullptr;
        int n = pg_call([&] { return load_endpoints(query_cxt_, &rows); });
        std::map<int32, Endpoint> fresh;
        secrets_change_at_ = Clock::time_point::max();
        for (int i = 0; i < n; i++) {
            const EndpointRow& row = rows[i];
            Endpoint e = endpoint_from_row(row, settings_);
            if (row.secrets_change_in_ms >= 0)
                secrets_change_at_ = std::min(secrets_change_at_, Clock::now() + milliseconds(row.secrets_change_in_ms));
            if (row.failing) pg_call([&] { seed_endpoint_failing(row.id); });
            if (auto old = holdings_.endpoints.find(e.id); old != holdings_.endpoints.end()) {
                e.in_flight = old->second.in_flight;
                e.paused_until = old->second.paused_until;
                e.held_until = old->second.held_until;
            }
            fresh.emplace(e.id, std::move(e));
        }
        holdings_.endpoints = std::move(fresh);
        endpoints_version_ = version;
        sending_.sync_sinks();
    }

    // Dispatches, and leases at once what the claim plan would claim of the
    // new deliveries of unlimited endpoints (outbox.dispatch_and_lease): at a
    // moderate rate that is most of them, each without a claim's UPDATE.
    int dispatch_and_lease(int limit, const ClaimPlan& plan, std::vector<Ready>& claimed,
                           std::map<int32, int>& leased) {
        std::vector<int32> endpoints, limits;
        int lease_ms = 0;
        int room = static_cast<int>(scheduler_.free_slots());
        for (auto [id, wanted] : plan) {
            const Endpoint& e = holdings_.endpoints.at(id);
            if (e.limited() || room == 0) continue;
            endpoints.push_back(id);
            limits.push_back(std::min(wanted, room));
            lease_ms = std::max(lease_ms, lease_ms_of(e));
        }
        ClaimedRow* rows = nullptr;
        int n = 0;
        int dispatched = pg_call([&] {
            return dispatch_events(limit, !settings_.url.empty(), lease_ms, endpoints.data(), limits.data(),
                                   static_cast<int>(endpoints.size()), query_cxt_, &rows, &n);
        });
        for (int i = 0; i < n; i++) leased[rows[i].endpoint_id]++;
        holdings_.claimed_pending += static_cast<std::size_t>(adopt_claims(rows, n, claimed));
        return dispatched;
    }

    // How long claims of `e` are leased: the setting, or longer than its
    // own time limit.
    int lease_ms_of(const Endpoint& e) const {
        return static_cast<int>(
            std::max(settings_.lease, e.timeout.value_or(milliseconds(0)) + std::chrono::seconds(5)).count());
    }

    int claim_into(int32 endpoint_id, int limit, std::vector<Ready>& claimed) {
        const Endpoint& endpoint = holdings_.endpoints.at(endpoint_id);
        ClaimedRow* rows = nullptr;
        int followers = endpoint.limited() ? static_cast<int>(scheduler_.claim_window_of(endpoint, scheduler_.endpoint_cap()))
                                           : settings_.batch_size * kPipelineBatches;
        int n = pg_call([&] {
            return claim_deliveries(endpoint_id, limit, lease_ms_of(endpoint), followers, query_cxt_, &rows);
        });
        return adopt_claims(rows, n, claimed);
    }

    // Builds the requests of claimed deliveries (rows in seq order, from
    // claim() or dispatch_and_lease()): a key's first row is its head, to be
    // started like any claim; the others follow it (Pipelines). Returns how
    // many went to `claimed`.
    int adopt_claims(const ClaimedRow* rows, int n, std::vector<Ready>& claimed) {
        int64_t timestamp = static_cast<int64_t>(std::time(nullptr));
        std::unordered_map<std::string, std::size_t> pipeline_of_key;  // endpoint and key
        int heads = 0;
        for (int i = 0; i < n; i++) {
            const ClaimedRow& row = rows[i];
            const Endpoint& endpoint = holdings_.endpoints.at(row.endpoint_id);
            // A claim waits for a slot at most half of what the lease leaves
            // beyond the request's own time limit; after that it is handed back.
            milliseconds request_timeout = endpoint.timeout.value_or(settings_.request_timeout);
            Clock::time_point start_by = Clock::now() + (milliseconds(lease_ms_of(endpoint)) - request_timeout) / 2;
            Ready ready{++last_tag_, {}, std::nullopt,
                        InFlight{row.event_id, row.endpoint_id, row.attempt, row.created_at}, start_by};
            if (endpoint.broker) ready.message = broker_message(endpoint, row, ready.tag, request_timeout);
            else ready.request = http_request(endpoint, row, ready.tag, request_timeout, timestamp);
            ready.delivery.keyed = row.key != nullptr;
            if (row.key != nullptr) {
                std::string key = std::to_string(row.endpoint_id) + '/' + row.key;
                auto [it, head] = pipeline_of_key.try_emplace(std::move(key), claimed_pipelines_.size());
                if (!head) {
                    claimed_pipelines_[it->second].second.push_back(std::move(ready));
                    continue;
                }
                claimed_pipelines_.emplace_back(ready.tag, std::deque<Ready>{});
            }
            claimed.push_back(std::move(ready));
            heads++;
        }
        return heads;
    }

    http::Request http_request(const Endpoint& endpoint, const ClaimedRow& row, std::uint64_t tag,
                               milliseconds request_timeout, int64_t timestamp) const {
        http::Request request;
        request.tag = tag;
        request.url = endpoint.url;
        request.body.assign(row.payload, row.payload_len);
        std::vector<core::Header> event_headers = split_header_lines(row.header_lines);
        core::RequestHeaderInput in;
        in.msg_id = row.event_id;
        in.timestamp = timestamp;
        in.body = request.body;
        in.keys = endpoint.keys;
        in.user_agent = settings_.http.user_agent;
        in.endpoint_headers = endpoint.headers;
        in.event_headers = event_headers;
        request.headers = core::build_request_headers(in);
        request.timeout = request_timeout;
        request.connect_timeout = std::min(settings_.connect_timeout, request.timeout);
        return request;
    }

    // A broker gets the event id, topic, key, payload and the endpoint's and
    // event's headers (docs/sinks.md: what each protocol makes of them).
    static sink::Message broker_message(const Endpoint& endpoint, const ClaimedRow& row, std::uint64_t tag,
                                        milliseconds timeout) {
        sink::Message message;
        message.tag = tag;
        message.event_id = row.event_id;
        message.topic = row.topic ? row.topic : "";
        if (row.key != nullptr) message.key = row.key;
        message.payload.assign(row.payload, row.payload_len);
        message.headers = endpoint.headers;
        for (core::Header& h : split_header_lines(row.header_lines)) message.headers.push_back(std::move(h));
        message.timeout = timeout;
        return message;
    }

    // Logs changes of the extension's state once each; returns whether it
    // can be delivered from. Between a package upgrade (a new library) and
    // ALTER EXTENSION outbox UPDATE the worker waits: events are kept and
    // enqueue() goes on working, and delivery resumes with the update.
    bool note_extension(ExtensionState state, const char* installed_version) {
        if (state != extension_state_) {
            switch (state) {
                case ExtensionState::Current:
                    log_message(LOG, fmt::format("outbox: extension found in database \"{}\"; delivering", guc_database));
                    break;
                case ExtensionState::Missing:
                    log_message(LOG,
                                fmt::format("outbox: extension \"outbox\" is not installed in database \"{}\"; waiting",
                                            guc_database),
                                {}, "Run CREATE EXTENSION outbox in that database, or set outbox.database.");
                    break;
                case ExtensionState::OtherVersion:
                    log_message(LOG,
                                fmt::format("outbox: extension \"outbox\" in database \"{}\" is version {}, the "
                                            "library is version {}; waiting for the extension to be updated",
                                            guc_database, installed_version, OUTBOX_VERSION),
                                {}, "Run ALTER EXTENSION outbox UPDATE in that database. Events are kept meanwhile.");
                    break;
            }
            extension_state_ = state;
        }
        return state == ExtensionState::Current;
    }

    long wait_timeout_ms() {
        auto now = Clock::now();
        if (!agenda_.backing_off(now) && should_transact()) return 0;
        auto deadline = std::min({agenda_.claim_deadline(), housekeeping_.next_prune(), secrets_change_at_, sending_.limits_wake(),
                                  agenda_.dispatch_retry_at()});
        if (!holdings_.results.finished.empty()) deadline = std::min(deadline, holdings_.results.oldest + kFlushDelay);
        if (agenda_.backing_off(now)) deadline = std::max(deadline, agenda_.error_until());
        auto timeout = sending_.timeout(std::chrono::duration_cast<milliseconds>(deadline - now));
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
                agenda_.wake();  // a commit with new events, or a NOTIFY
            }
        }
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
        log_message(LOG, fmt::format("outbox worker {} stopped", slot_));
    }

    int slot_;
    Settings settings_;
    std::size_t wait_events_ = 3;
    MemoryContext query_cxt_ = nullptr;
    WaitEventSet* wait_set_ = nullptr;
    Holdings holdings_;
    core::Agenda agenda_{Clock::now()};
    Scheduler scheduler_{slot_, settings_, holdings_, agenda_};
    Sending sending_{slot_, settings_, holdings_, scheduler_};
    Housekeeping housekeeping_{slot_, settings_, holdings_, agenda_};
    std::string endpoints_version_;  // empty: not loaded
    Clock::time_point secrets_change_at_ = Clock::time_point::max();
    // Pipelines claimed in the open transaction, attached once it commits.
    std::vector<std::pair<std::uint64_t, std::deque<Ready>>> claimed_pipelines_;
    std::uint64_t last_tag_ = 0;
    ExtensionState extension_state_ = ExtensionState::Current;
    bool url_missing_logged_ = false;
    int consecutive_errors_ = 0;
};

void withdraw_latch(int, Datum arg) { withdraw_worker_latch(DatumGetInt32(arg)); }

}  // namespace

}  // namespace outbox::pg

extern "C" PGDLLEXPORT void outbox_worker_main(Datum arg) {
    using namespace outbox::pg;
    int slot = DatumGetInt32(arg);
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
    // hiredis and rabbitmq-c write to sockets with write(2)/send(2): a
    // broker that closed its end must give EPIPE, not kill the worker.
    // (Background workers inherit SIG_IGN from the postmaster; made sure.)
    pqsignal(SIGPIPE, SIG_IGN);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(guc_database, nullptr, 0);
    SetConfigOption("application_name", "outbox worker", PGC_USERSET, PGC_S_SESSION);
    // The worker's queries are short and run thousands of times; JIT
    // compilation (triggered by cost estimates on large backlogs) would cost
    // more than any of them.
    SetConfigOption("jit", "off", PGC_SUSET, PGC_S_SESSION);
    // The worker's statements (and those inside outbox.dispatch, claim and
    // record) run with new parameters thousands of times a second. Custom
    // plans re-plan each call, most of the cost of a small batch (about
    // 0.2 ms of 0.3 per claim); generic plans are made once, and again when
    // the tables grow (replan.cpp). They were written not to depend on the
    // values.
    SetConfigOption("plan_cache_mode", "force_generic_plan", PGC_USERSET, PGC_S_SESSION);
    // Claims (FOR UPDATE SKIP LOCKED), pruning and truncation rely on each
    // statement seeing what committed before it, whatever the server's or
    // database's default_transaction_isolation.
    SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_SESSION);
    pgstat_report_appname("outbox worker");
    before_shmem_exit(withdraw_latch, Int32GetDatum(slot));
    report_exceptions("outbox worker", [&] {
        Worker worker(slot);
        worker.run();
    });
    proc_exit(0);
}
