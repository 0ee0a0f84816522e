#include "pg/gucs.hpp"

#include "core/address_policy.hpp"
#include "core/error.hpp"
#include "core/signing.hpp"
#include "core/trace.hpp"
#include "core/validate.hpp"
#include "sink/sink.hpp"

extern "C" {
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/varlena.h"
}

#include <climits>
extern "C" {
}

#include <string>

namespace outbox::pg {

char* guc_database = nullptr;
int guc_workers = 2;
int guc_max_workers = 8;
bool guc_paused = false;
char* guc_url = nullptr;
char* guc_secret = nullptr;
char* guc_allowed_networks = nullptr;
char* guc_ca_file = nullptr;
int guc_batch_size = 100;
int guc_max_in_flight = 64;
int guc_request_timeout_ms = 30000;
int guc_connect_timeout_ms = 10000;
int guc_poll_interval_ms = 1000;
int guc_max_attempts = 10;
int guc_retry_base_ms = 5000;
int guc_retry_max_ms = 3600000;
int guc_lease_ms = 60000;
int guc_retention_s = 86400;
int guc_dead_retention_s = 7 * 86400;
int guc_max_payload_size = 1024 * 1024;
int guc_max_reply_size = 64 * 1024;
int guc_max_response_size = 4096;
int guc_callback_max_attempts = 5;
char* guc_channel = nullptr;
bool guc_notify_on_enqueue = false;
int guc_log_attempts = kLogAttemptsFailures;
int guc_attempt_retention_s = 7 * 86400;
char* guc_traceparent = nullptr;
char* guc_tracestate = nullptr;

namespace {

// Check hooks run in any backend and must not throw: they catch the core's
// exceptions and report through GUC_check_errmsg.
template <typename Fn>
bool check_with(Fn&& fn) {
    try {
        fn();
        return true;
    } catch (const core::InvalidInput& e) {
        GUC_check_errmsg("%s", e.what());
        if (!e.detail().empty()) GUC_check_errdetail("%s", e.detail().c_str());
        if (!e.hint().empty()) GUC_check_errhint("%s", e.hint().c_str());
    } catch (const std::exception& e) {
        GUC_check_errmsg("%s", e.what());
    }
    return false;
}

// Settings of the server, or of one database (ALTER DATABASE ... SET), but
// not of a session: nothing there would read them.
bool not_in_session(const char* name, GucSource source) {
    if (source != PGC_S_SESSION) return true;
    GUC_check_errcode(ERRCODE_CANT_CHANGE_RUNTIME_PARAM);
    GUC_check_errmsg("parameter \"%s\" cannot be changed in a session", name);
    GUC_check_errhint("Set it in postgresql.conf, or for one database with ALTER DATABASE ... SET.");
    return false;
}

bool check_workers(int*, void**, GucSource source) { return not_in_session("outbox.workers", source); }
bool check_paused(bool*, void**, GucSource source) { return not_in_session("outbox.paused", source); }

bool check_database_list(char** newval, void**, GucSource) {
    if (*newval == nullptr || strchr(*newval, ',') == nullptr) return true;
    List* names = NIL;
    char* copy = pstrdup(*newval);
    bool ok = SplitGUCList(copy, ',', &names);
    list_free(names);
    pfree(copy);
    if (!ok) {
        GUC_check_errmsg("outbox.database must be empty, a database name or a comma-separated list of them");
        GUC_check_errdetail("Got \"%s\".", *newval);
    }
    return ok;
}

bool check_url(char** newval, void**, GucSource) {
    const char* url = *newval;
    if (url == nullptr || url[0] == '\0') return true;
    std::string s(url);
    if (s.rfind("http://", 0) != 0 && s.rfind("https://", 0) != 0) {
        GUC_check_errmsg("outbox.url must be an http:// or https:// URL");
        GUC_check_errdetail("Got \"%s\".", url);
        return false;
    }
    if (s.find_first_of(" \t\r\n") != std::string::npos) {
        GUC_check_errmsg("outbox.url must not contain white space");
        return false;
    }
    return true;
}

bool check_secret(char** newval, void**, GucSource) {
    const char* secret = *newval;
    if (secret == nullptr || secret[0] == '\0') return true;
    return check_with([&] { core::SigningKey::parse(secret); });
}

bool check_networks(char** newval, void**, GucSource) {
    const char* text = *newval ? *newval : "";
    return check_with([&] { core::NetworkList::parse(text); });
}

bool check_channel(char** newval, void**, GucSource) {
    const char* channel = *newval;
    if (channel == nullptr || channel[0] == '\0' || strlen(channel) >= NAMEDATALEN) {
        GUC_check_errmsg("outbox.channel must be a channel name of 1 to %d bytes", NAMEDATALEN - 1);
        return false;
    }
    return true;
}

bool check_traceparent(char** newval, void**, GucSource) {
    if (*newval == nullptr || (*newval)[0] == '\0') return true;
    return check_with([&] { core::validate_traceparent(*newval); });
}

bool check_tracestate(char** newval, void**, GucSource) {
    if (*newval == nullptr || (*newval)[0] == '\0') return true;
    return check_with([&] { core::validate_tracestate(*newval); });
}

// Ordinary users may lower the limit in their session; only a superuser may
// raise it above what the configuration (postgresql.conf, ALTER SYSTEM or the
// default) says, which is the setting's reset value.
bool check_max_payload_size(int* newval, void**, GucSource source) {
    if (source < PGC_S_INTERACTIVE || superuser()) return true;
    const char* reset = GetConfigOptionResetString("outbox.max_payload_size");
    int configured = reset ? atoi(reset) : 0;
    if (configured > 0 && *newval > configured) {
        GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
        GUC_check_errmsg("permission denied to raise outbox.max_payload_size above %d bytes",
                         configured);
        GUC_check_errhint("A superuser may raise it, in postgresql.conf or with SET.");
        return false;
    }
    return true;
}

}  // namespace

List* served_database_names() {
    const char* setting = guc_database;
    if (setting == nullptr || setting[0] == '\0') return NIL;
    // One name is taken as it is written (as 0.2.0 did: a name with a space
    // or capitals stays valid); a list is split like search_path, double
    // quotes kept for names with commas.
    if (strchr(setting, ',') == nullptr) return list_make1(pstrdup(setting));
    List* names = NIL;
    (void)SplitGUCList(pstrdup(setting), ',', &names);  // checked when set (check_database_list)
    return names;
}

void define_gucs() {
    // Server-start settings can only be defined while the library is
    // preloaded; loaded later (not preloaded), there is no worker anyway.
    if (process_shared_preload_libraries_in_progress) {
        DefineCustomStringVariable(
            "outbox.database", "Databases the background workers deliver the events of.",
            "Empty: every database that has the extension. Else a name, or a comma-separated list.",
            &guc_database, "", PGC_POSTMASTER, 0, check_database_list, nullptr, nullptr);
        DefineCustomIntVariable(
            "outbox.max_workers", "Delivery workers of all databases together.",
            "When the databases ask for more, each still gets one and the rest is shared.",
            &guc_max_workers, 8, 1, 10000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    }
    // outbox.workers and outbox.paused may be set per database (ALTER
    // DATABASE ... SET), which PostgreSQL accepts only of settings a
    // superuser may change in a session: hence PGC_SUSET, and a check that
    // refuses the session itself. The launcher reads them (launcher_catalog.cpp).
    DefineCustomIntVariable(
        "outbox.workers", "Background workers claiming and delivering events, per database.", nullptr,
        // Two by default: on a small machine whose producers take every
        // core, one worker gets too small a share of CPU to keep up
        // (measured: 3,470 tps in, 2,618/s delivered); two keep pace and
        // drain a backlog faster. Dispatch and claims are safe to share.
        &guc_workers, 2, 1, kMaxWorkers, PGC_SUSET, 0, check_workers, nullptr, nullptr);
    DefineCustomBoolVariable(
        "outbox.paused", "When on, workers claim nothing and events accumulate.", nullptr,
        &guc_paused, false, PGC_SUSET, 0, check_paused, nullptr, nullptr);
    DefineCustomStringVariable(
        "outbox.url", "Default webhook endpoint: receives every topic.",
        "Empty: events wait for the default endpoint until a URL is set.", &guc_url, "",
        PGC_SIGHUP, 0, check_url, nullptr, nullptr);
    DefineCustomStringVariable(
        "outbox.secret", "Signing secret (whsec_...) of the default endpoint.",
        "Empty: requests to the default endpoint are not signed.", &guc_secret, "", PGC_SIGHUP,
        GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL, check_secret, nullptr, nullptr);
    DefineCustomStringVariable(
        "outbox.allowed_networks",
        "Special-purpose networks (CIDR list) that endpoints may resolve to anyway.",
        "Loopback, private, link-local and similar addresses are refused unless listed here.",
        &guc_allowed_networks, "", PGC_SIGHUP, 0, check_networks, nullptr, nullptr);
    DefineCustomStringVariable(
        "outbox.ca_file", "CA bundle used to verify endpoints' TLS certificates.",
        "Empty: the system's CA bundle.", &guc_ca_file, "", PGC_SIGHUP, 0, nullptr, nullptr,
        nullptr);
    DefineCustomIntVariable(
        "outbox.batch_size", "Deliveries claimed per claim query.", nullptr, &guc_batch_size, 100,
        1, 10000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "outbox.max_in_flight", "Concurrent HTTP requests per worker.", nullptr,
        &guc_max_in_flight, 64, 1, 10000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "outbox.request_timeout", "Time limit of one webhook request, connection included.",
        nullptr, &guc_request_timeout_ms, 30000, 10, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS,
        nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "outbox.connect_timeout", "Time limit for establishing a connection.", nullptr,
        &guc_connect_timeout_ms, 10000, 10, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr,
        nullptr, nullptr);
    DefineCustomIntVariable(
        "outbox.max_reply_size",
        "Largest reply of a broker (NATS, RabbitMQ, Redis) a worker holds in memory.",
        "A connection whose broker sends more, or an unfinished reply past it, is closed.",
        &guc_max_reply_size, 64 * 1024, 4096, 64 * 1024 * 1024, PGC_SIGHUP, GUC_UNIT_BYTE, nullptr,
        nullptr, nullptr);
    DefineCustomIntVariable(
        "outbox.poll_interval",
        "Fallback wake-up of the workers when no commit or NOTIFY wakes them.", nullptr,
        &guc_poll_interval_ms, 1000, 10, 24 * 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr,
        nullptr, nullptr);
    DefineCustomIntVariable(
        "outbox.max_attempts", "Attempts per delivery before it is dead.", nullptr,
        &guc_max_attempts, 10, 1, 1000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "outbox.retry_base", "Delay before the first retry; doubles with each attempt.", nullptr,
        &guc_retry_base_ms, 5000, 1, 24 * 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr,
        nullptr, nullptr);
    DefineCustomIntVariable(
        "outbox.retry_max", "Longest delay between attempts; also caps Retry-After.", nullptr,
        &guc_retry_max_ms, 3600 * 1000, 1, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
        nullptr);
    DefineCustomIntVariable(
        "outbox.lease",
        "How long a claimed delivery stays invisible to other claimers.",
        "Must exceed outbox.request_timeout; a crashed worker's deliveries come back after it.",
        &guc_lease_ms, 60000, 1000, 24 * 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
        nullptr);
    DefineCustomIntVariable(
        "outbox.retention", "How long delivered events are kept before they are pruned.", nullptr,
        &guc_retention_s, 86400, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
    // Set by the application for its transaction
    // (set_config('outbox.traceparent', $1, true)): every event enqueued in
    // it, by triggers too, carries the W3C trace headers.
    DefineCustomStringVariable(
        "outbox.traceparent", "W3C traceparent sent with the events this transaction enqueues.", nullptr,
        &guc_traceparent, "", PGC_USERSET, GUC_NOT_IN_SAMPLE, check_traceparent, nullptr, nullptr);
    DefineCustomStringVariable(
        "outbox.tracestate", "W3C tracestate sent with the events this transaction enqueues.", nullptr,
        &guc_tracestate, "", PGC_USERSET, GUC_NOT_IN_SAMPLE, check_tracestate, nullptr, nullptr);
    static const struct config_enum_entry log_attempts_options[] = {
        {"none", kLogAttemptsNone, false},
        {"failures", kLogAttemptsFailures, false},
        {"all", kLogAttemptsAll, false},
        {nullptr, 0, false},
    };
    DefineCustomEnumVariable(
        "outbox.log_attempts", "Which attempts are kept in outbox.attempts: none, failures or all.", nullptr,
        &guc_log_attempts, kLogAttemptsFailures, log_attempts_options, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "outbox.attempt_retention", "How long rows of outbox.attempts are kept before they are pruned.", nullptr,
        &guc_attempt_retention_s, 7 * 86400, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "outbox.dead_retention", "How long dead deliveries are kept before they are pruned.",
        nullptr, &guc_dead_retention_s, 7 * 86400, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr,
        nullptr, nullptr);
    DefineCustomIntVariable(
        "outbox.max_payload_size", "Largest payload enqueue() accepts (its JSON text).",
        "Users may lower it; only a superuser may raise it.", &guc_max_payload_size,
        1024 * 1024, 1, MaxAllocSize / 2, PGC_USERSET, GUC_UNIT_BYTE, check_max_payload_size,
        nullptr, nullptr);
    DefineCustomIntVariable(
        "outbox.max_response_size", "Bytes of a response body kept for its delivery and its callback.",
        "A longer body is cut there (and is no longer JSON for the callback's response).", &guc_max_response_size,
        4096, 0, 1024 * 1024, PGC_SIGHUP, GUC_UNIT_BYTE, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "outbox.callback_max_attempts", "Calls of a failing callback before it is dead (outbox.callback.dead).",
        nullptr, &guc_callback_max_attempts, 5, 1, 1000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "outbox.channel", "Channel the workers LISTEN on: NOTIFY it to wake them.", nullptr,
        &guc_channel, "outbox", PGC_SIGHUP, 0, check_channel, nullptr, nullptr);
    DefineCustomBoolVariable(
        "outbox.notify_on_enqueue",
        "Whether enqueue() also sends NOTIFY on outbox.channel.",
        "Off by default: committing transactions wake the workers directly, and NOTIFY "
        "serializes commits.",
        &guc_notify_on_enqueue, false, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    // Read-only: which broker protocols this build of the library has
    // (the Makefile's BROKERS); create_endpoint refuses the others.
    static std::string brokers = sink::built_in_protocols();
    static char* broker_protocols = nullptr;
    DefineCustomStringVariable(
        "outbox.broker_protocols", "Broker protocols this build of the library delivers to.",
        "nats, amqp, redis, kafka when built with libnats, librabbitmq, hiredis and librdkafka; empty: webhooks only.",
        &broker_protocols, brokers.c_str(), PGC_INTERNAL, GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE, nullptr,
        nullptr, nullptr);
    MarkGUCPrefixReserved("outbox");
}

}  // namespace outbox::pg
