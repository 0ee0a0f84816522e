#include "pg/settings.hpp"

#include "pg/gucs.hpp"

namespace outbox::pg {

namespace {

std::string str(const char* s) { return s ? std::string(s) : std::string(); }

}  // namespace

Settings load_settings() {
    using std::chrono::milliseconds;
    Settings s;
    s.paused = guc_paused;
    s.url = str(guc_url);
    if (guc_secret && guc_secret[0] != '\0') s.keys.push_back(core::SigningKey::parse(guc_secret));
    s.http.allowed_networks = core::NetworkList::parse(str(guc_allowed_networks));
    s.http.ca_file = str(guc_ca_file);
    s.http.user_agent = "outbox/" OUTBOX_VERSION;
    s.http.max_connections = guc_max_in_flight;
    s.http.max_body = static_cast<std::size_t>(guc_max_response_size);
    s.http.max_read = std::max<std::size_t>(s.http.max_read, s.http.max_body);
    s.retry.max_attempts = guc_max_attempts;
    s.retry.base = milliseconds(guc_retry_base_ms);
    s.retry.max = milliseconds(std::max(guc_retry_max_ms, guc_retry_base_ms));
    s.batch_size = guc_batch_size;
    s.max_in_flight = guc_max_in_flight;
    s.request_timeout = milliseconds(guc_request_timeout_ms);
    s.connect_timeout = milliseconds(std::min(guc_connect_timeout_ms, guc_request_timeout_ms));
    s.max_reply = static_cast<std::size_t>(guc_max_reply_size);
    s.poll_interval = milliseconds(guc_poll_interval_ms);
    // A lease shorter than a request would let a second claimer send the same
    // delivery while the first request is still running.
    s.lease = milliseconds(std::max(guc_lease_ms, guc_request_timeout_ms + 5000));
    s.retention_s = guc_retention_s;
    s.dead_retention_s = guc_dead_retention_s;
    s.attempt_retention_s = guc_attempt_retention_s;
    s.channel = str(guc_channel);
    return s;
}

}  // namespace outbox::pg
