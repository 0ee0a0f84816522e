// The delivery worker: one process per outbox.workers slot, connected to
// outbox.database. Each loop: move HTTP transfers on; in one short
// transaction record finished ones, turn newly committed events into
// deliveries (dispatch) and claim due deliveries; start the claimed requests
// after it commits; then sleep on the latch and the HTTP sockets.
#include "pg/worker.hpp"

#include "core/headers.hpp"
#include "core/outcome.hpp"
#include "core/text.hpp"
#include "http/client.hpp"
#include "pg/gucs.hpp"
#include "pg/guard.hpp"
#include "pg/queue.hpp"
#include "pg/settings.hpp"
#include "pg/shmem.hpp"
#include "pg/transaction.hpp"

extern "C" {
#include "commands/async.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"
}

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace outbox::pg {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int32 kDefaultEndpoint = 0;
constexpr auto kFlushDelay = milliseconds(20);     // longest a finished result waits to be recorded
constexpr auto kPruneInterval = std::chrono::seconds(10);
constexpr int kPruneBatch = 1000;
constexpr auto kErrorBackoff = std::chrono::seconds(1);
constexpr int kMaxConsecutiveErrors = 5;

struct InFlight {
    std::string event_id;
    int32 endpoint_id;
    int32 attempt;
};

struct Finished {
    InFlight delivery;
    const char* state;  // "pending", "delivered", "dead"
    int64 retry_in_ms = 0;
    int32 status = 0;
    std::string error;
    int64 duration_us = 0;
    std::string response;
};

// "name: value\n..." as produced by the claim query, back into pairs. Names
// and values were validated by enqueue(): no CR/LF, names are tokens.
std::vector<core::Header> split_header_lines(const char* lines) {
    std::vector<core::Header> headers;
    if (lines == nullptr) return headers;
    std::string_view rest(lines);
    while (!rest.empty()) {
        size_t end = rest.find('\n');
        std::string_view line = rest.substr(0, end);
        size_t colon = line.find(": ");
        if (colon != std::string_view::npos)
            headers.emplace_back(std::string(line.substr(0, colon)), std::string(line.substr(colon + 2)));
        if (end == std::string_view::npos) break;
        rest.remove_prefix(end + 1);
    }
    return headers;
}

void log_message(int elevel, const std::string& message, const std::string& detail = {},
                 const std::string& hint = {}) {
    pg_call([&] {
        ereport(elevel, (errmsg_internal("%s", message.c_str()),
                         detail.empty() ? 0 : errdetail_internal("%s", detail.c_str()),
                         hint.empty() ? 0 : errhint("%s", hint.c_str())));
    });
}

class Worker {
public:
    explicit Worker(int slot)
        : slot_(slot), settings_(load_settings()), client_(settings_.http), rng_(std::random_device{}()) {
        claim_cxt_ = pg_call([] {
            return AllocSetContextCreate(TopMemoryContext, "outbox claim", ALLOCSET_DEFAULT_SIZES);
        });
        wait_set_ = pg_call([&] {
            WaitEventSet* set = CreateWaitEventSet(TopMemoryContext, 3);
            AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, nullptr);
            AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, nullptr, nullptr);
            AddWaitEventToSet(set, WL_SOCKET_READABLE, client_.fd(), nullptr, nullptr);
            return set;
        });
    }

    void run() {
        log_message(LOG, fmt::format("outbox worker {} started, delivering events of database \"{}\"",
                                     slot_, guc_database));
        listen(settings_.channel);
        while (!ShutdownRequestPending) {
            pg_call([] { CHECK_FOR_INTERRUPTS(); });
            if (ConfigReloadPending) reload();
            if (notifyInterruptPending) {
                // NOTIFY on our channel: consume the queue (so it can be
                // truncated) and look for work.
                pg_call([] { ProcessNotifyInterrupt(false); });
                want_claim_ = true;
            }
            client_.perform();
            collect_completed();
            try {
                step();
            } catch (const PgError& e) {
                log_message(WARNING, fmt::format("outbox worker: {}", e.what()), e.detail(), e.hint());
                error_until_ = Clock::now() + kErrorBackoff;
                want_claim_ = true;
            }
            wait();
        }
        shutdown();
    }

private:
    void reload() {
        ConfigReloadPending = false;
        pg_call([] { ProcessConfigFile(PGC_SIGHUP); });
        std::string old_channel = settings_.channel;
        settings_ = load_settings();
        client_.set_options(settings_.http);
        url_missing_logged_ = false;
        if (settings_.channel != old_channel) {
            in_transaction("outbox: unlisten", [&] { pg_call([&] { Async_Unlisten(old_channel.c_str()); }); });
            listen(settings_.channel);
        }
        want_claim_ = true;
    }

    void listen(const std::string& channel) {
        in_transaction("outbox: listen", [&] { pg_call([&] { Async_Listen(channel.c_str()); }); });
    }

    std::size_t free_slots() const {
        std::size_t in_flight = client_.in_flight();
        std::size_t max = static_cast<std::size_t>(settings_.max_in_flight);
        return in_flight >= max ? 0 : max - in_flight;
    }

    bool delivering() {
        if (settings_.paused) return false;
        if (settings_.url.empty()) {
            if (!url_missing_logged_) {
                log_message(LOG, "outbox.url is not set: events for the default endpoint wait until it is",
                            {}, "Set outbox.url in postgresql.conf and reload.");
                url_missing_logged_ = true;
            }
            return false;
        }
        return true;
    }

    // Claim when there may be work and enough slots are free: all of them
    // when idle (lowest latency), else at least half a batch, so that a busy
    // worker claims in batches rather than one row at a time.
    bool should_claim() {
        if (!want_claim_ || Clock::now() < error_until_ || !delivering()) return false;
        std::size_t free = free_slots();
        if (free == 0) return false;
        if (client_.in_flight() == 0) return true;
        std::size_t half_batch = std::max<std::size_t>(
            1, std::min<std::size_t>(settings_.batch_size, settings_.max_in_flight) / 2);
        return free >= half_batch;
    }

    bool should_flush() const {
        if (finished_.empty()) return false;
        return finished_.size() >= static_cast<std::size_t>(settings_.batch_size) ||
               client_.in_flight() == 0 || Clock::now() - oldest_finished_ >= kFlushDelay;
    }

    void step() {
        auto now = Clock::now();
        if (now < error_until_) return;
        if (now >= claim_deadline_) {
            // The poll timer or the earliest retry fell due: look for work,
            // and re-arm the timer so that an idle worker does not spin.
            want_claim_ = true;
            claim_deadline_ = now + settings_.poll_interval;
        }
        bool flush = should_flush();
        bool claim = should_claim();
        try {
            if (flush || claim) deliver_transaction(flush, claim);
            if (Clock::now() >= next_prune_) prune();
            consecutive_errors_ = 0;
        } catch (const PgError&) {
            // A batch of results that cannot be written must not block the
            // worker forever: its deliveries come back after the lease.
            if (++consecutive_errors_ >= kMaxConsecutiveErrors && !finished_.empty()) {
                log_message(WARNING, fmt::format("outbox worker: dropping {} unrecorded results after "
                                                 "repeated errors; they will be retried after the lease",
                                                 finished_.size()));
                finished_.clear();
            }
            throw;
        }
    }

    // Records finished attempts and claims new deliveries in one transaction;
    // the claimed requests start only after it commits.
    void deliver_transaction(bool flush, bool claim) {
        std::vector<http::Request> requests;
        std::vector<InFlight> claimed;
        bool present = false;
        std::optional<int64> next_due_ms;
        int asked = 0;
        int got = 0;
        int dispatch_limit = settings_.batch_size * 10;
        int dispatched = 0;
        bool dispatch = delivering();
        in_transaction("outbox: record and claim", [&] {
            present = pg_call([] { return extension_installed(); });
            if (!present) return;
            if (flush) record(finished_);
            if (dispatch) dispatched = pg_call([&] { return dispatch_events(dispatch_limit); });
            if (claim) {
                asked = static_cast<int>(std::min<std::size_t>(settings_.batch_size, free_slots()));
                got = claim_into(asked, requests, claimed);
                if (got < asked) next_due_ms = pg_call([] { return ms_until_next_due(kDefaultEndpoint); });
            }
        });
        pg_call([&] { MemoryContextReset(claim_cxt_); });
        if (!note_extension(present)) {
            // Without the extension nothing we hold can be written back; look
            // again at the next poll.
            finished_.clear();
            want_claim_ = false;
            return;
        }
        if (flush) {
            finished_.clear();
            want_claim_ = true;  // finished heads may unblock keys; retries change the next due time
        }
        if (dispatched == dispatch_limit) want_claim_ = true;  // more events to dispatch
        if (!claim) return;
        auto now = Clock::now();
        claim_deadline_ = now + settings_.poll_interval;
        // A full batch, or a full dispatch: there is probably more.
        want_claim_ = got == asked || dispatched == dispatch_limit;
        if (next_due_ms && *next_due_ms >= 0)
            claim_deadline_ = std::min(claim_deadline_, now + milliseconds(*next_due_ms));
        for (std::size_t i = 0; i < requests.size(); i++) {
            in_flight_.emplace(requests[i].tag, std::move(claimed[i]));
            client_.start(std::move(requests[i]));
        }
    }

    int claim_into(int limit, std::vector<http::Request>& requests, std::vector<InFlight>& claimed) {
        ClaimedRow* rows = nullptr;
        int lease_ms = static_cast<int>(settings_.lease.count());
        int n = pg_call([&] { return claim_deliveries(kDefaultEndpoint, limit, lease_ms, claim_cxt_, &rows); });
        int64_t timestamp = static_cast<int64_t>(std::time(nullptr));
        for (int i = 0; i < n; i++) {
            const ClaimedRow& row = rows[i];
            http::Request request;
            request.tag = ++last_tag_;
            request.url = settings_.url;
            request.body.assign(row.payload, row.payload_len);
            std::vector<core::Header> event_headers = split_header_lines(row.header_lines);
            core::RequestHeaderInput in;
            in.msg_id = row.event_id;
            in.timestamp = timestamp;
            in.body = request.body;
            in.keys = settings_.keys;
            in.user_agent = settings_.http.user_agent;
            in.event_headers = event_headers;
            request.headers = core::build_request_headers(in);
            request.timeout = settings_.request_timeout;
            request.connect_timeout = settings_.connect_timeout;
            requests.push_back(std::move(request));
            claimed.push_back(InFlight{row.event_id, row.endpoint_id, row.attempt});
        }
        return n;
    }

    void record(const std::vector<Finished>& finished) {
        bool ascii_only = pg_call([] { return GetDatabaseEncoding() != PG_UTF8; });
        std::vector<std::string> responses;
        std::vector<std::string> errors;
        responses.reserve(finished.size());
        errors.reserve(finished.size());
        std::vector<ResultRow> rows;
        rows.reserve(finished.size());
        for (const Finished& f : finished) {
            responses.push_back(core::sanitize_text(f.response, ascii_only));
            errors.push_back(core::sanitize_text(f.error, ascii_only));
            rows.push_back(ResultRow{f.delivery.event_id.c_str(), f.delivery.endpoint_id,
                                     f.delivery.attempt, f.state, f.retry_in_ms, f.status,
                                     errors.back().empty() ? nullptr : errors.back().c_str(),
                                     f.duration_us,
                                     responses.back().empty() ? nullptr : responses.back().c_str()});
        }
        pg_call([&] { record_results(rows.data(), static_cast<int>(rows.size())); });
    }

    void collect_completed() {
        std::uniform_real_distribution<double> unit(0.0, 1.0);
        for (http::Response& response : client_.take_completed()) {
            auto it = in_flight_.find(response.tag);
            if (it == in_flight_.end()) continue;
            Finished f;
            f.delivery = std::move(it->second);
            in_flight_.erase(it);
            core::AttemptResult result;
            result.attempt = f.delivery.attempt;
            result.http_status = response.status;
            if (!response.retry_after.empty())
                result.retry_after = core::parse_retry_after(response.retry_after, std::chrono::system_clock::now());
            core::Decision decision = core::decide(settings_.retry, result, unit(rng_));
            if (decision.outcome == core::Outcome::Gone) {
                // The default endpoint lives in postgresql.conf and cannot be
                // disabled from here: 410 counts as an ordinary failure.
                result.http_status = 500;
                decision = core::decide(settings_.retry, result, unit(rng_));
            }
            switch (decision.outcome) {
                case core::Outcome::Delivered: f.state = "delivered"; break;
                case core::Outcome::Dead: f.state = "dead"; break;
                default: f.state = "pending"; f.retry_in_ms = decision.delay.count(); break;
            }
            f.status = static_cast<int32>(response.status);
            f.error = !response.error.empty() ? std::move(response.error)
                      : (response.status >= 200 && response.status < 300) ? std::string()
                      : fmt::format("HTTP {}", response.status);
            f.duration_us = response.duration.count();
            f.response = std::move(response.body);
            if (decision.outcome == core::Outcome::Dead)
                log_message(LOG, fmt::format("outbox: delivery of event {} is dead after {} attempts: {}",
                                             f.delivery.event_id, f.delivery.attempt, f.error));
            if (finished_.empty()) oldest_finished_ = Clock::now();
            finished_.push_back(std::move(f));
        }
    }

    void prune() {
        next_prune_ = Clock::now() + kPruneInterval;
        int64 retention = settings_.retention_s;
        int64 dead_retention = settings_.dead_retention_s;
        // Small batches in their own transactions, so that pruning never
        // holds up delivery for long; a large backlog drains over cycles.
        for (int round = 0; round < 10; round++) {
            int deleted = 0;
            in_transaction("outbox: prune", [&] {
                if (!pg_call([] { return extension_installed(); })) return;
                deleted = pg_call([&] { return prune_finished(retention, dead_retention, kPruneBatch); });
            });
            if (deleted < kPruneBatch) break;
        }
    }

    // Logs changes of "is the extension installed?" once each; returns it.
    bool note_extension(bool present) {
        if (present != extension_present_) {
            if (present)
                log_message(LOG, fmt::format("outbox: extension found in database \"{}\"; delivering", guc_database));
            else
                log_message(LOG,
                            fmt::format("outbox: extension \"outbox\" is not installed in database \"{}\"; waiting",
                                        guc_database),
                            {}, "Run CREATE EXTENSION outbox in that database, or set outbox.database.");
            extension_present_ = present;
        }
        return present;
    }

    long wait_timeout_ms() {
        auto now = Clock::now();
        if (now >= error_until_ && (should_flush() || should_claim())) return 0;
        auto deadline = std::min(claim_deadline_, next_prune_);
        if (!finished_.empty()) deadline = std::min(deadline, oldest_finished_ + kFlushDelay);
        if (now < error_until_) deadline = std::max(deadline, error_until_);
        auto timeout = std::chrono::duration_cast<milliseconds>(deadline - now);
        if (auto http = client_.timeout()) timeout = std::min(timeout, *http);
        return std::max<long>(0, static_cast<long>(timeout.count()));
    }

    void wait() {
        long timeout = wait_timeout_ms();
        WaitEvent events[3];
        int n = pg_call([&] {
            return WaitEventSetWait(wait_set_, timeout, events, 3, PG_WAIT_EXTENSION);
        });
        for (int i = 0; i < n; i++) {
            if (events[i].events & WL_LATCH_SET) {
                pg_call([] { ResetLatch(MyLatch); });
                want_claim_ = true;  // a commit with new events, or a NOTIFY
            }
        }
    }

    // Clean stop (SIGTERM): write what finished, and hand unfinished claims
    // back at once instead of letting them wait for the lease.
    void shutdown() {
        client_.perform();
        collect_completed();
        std::vector<ResultRow> unfinished;
        for (const auto& [tag, d] : in_flight_)
            unfinished.push_back(ResultRow{d.event_id.c_str(), d.endpoint_id, d.attempt, "pending", 0, 0,
                                           nullptr, 0, nullptr});
        try {
            in_transaction("outbox: shutdown", [&] {
                if (!pg_call([] { return extension_installed(); })) return;
                record(finished_);
                pg_call([&] { release_claims(unfinished.data(), static_cast<int>(unfinished.size())); });
            });
        } catch (const PgError& e) {
            log_message(WARNING, fmt::format("outbox worker: on shutdown: {}", e.what()));
        }
        log_message(LOG, fmt::format("outbox worker {} stopped", slot_));
    }

    int slot_;
    Settings settings_;
    http::Client client_;
    std::mt19937_64 rng_;
    MemoryContext claim_cxt_ = nullptr;
    WaitEventSet* wait_set_ = nullptr;
    std::unordered_map<std::uint64_t, InFlight> in_flight_;
    std::vector<Finished> finished_;
    Clock::time_point oldest_finished_{};
    Clock::time_point claim_deadline_ = Clock::now();
    Clock::time_point next_prune_ = Clock::now() + kPruneInterval;
    Clock::time_point error_until_{};
    std::uint64_t last_tag_ = 0;
    bool want_claim_ = true;
    bool extension_present_ = true;
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
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(guc_database, nullptr, 0);
    SetConfigOption("application_name", "outbox worker", PGC_USERSET, PGC_S_SESSION);
    pgstat_report_appname("outbox worker");
    publish_worker_latch(slot, MyLatch);
    before_shmem_exit(withdraw_latch, Int32GetDatum(slot));
    report_exceptions("outbox worker", [&] {
        Worker worker(slot);
        worker.run();
    });
    proc_exit(0);
}
