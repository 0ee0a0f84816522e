#include "pg/endpoint.hpp"

#include <algorithm>
#include <string_view>

namespace outbox::pg {

using std::chrono::milliseconds;

Endpoint endpoint_from_row(const EndpointRow& row, const Settings& settings) {
    Endpoint e;
    e.id = row.id;
    e.name = row.name ? row.name : "";
    e.enabled = row.enabled;
    if (row.id == 0) {
        e.url = settings.url;
        e.keys = settings.keys;
    } else if (sink::is_broker_url(row.url ? row.url : "")) {
        // Its secret is its credentials (newest first; there is one).
        e.url = row.url;
        e.broker = true;
        std::string_view secrets = row.secrets ? row.secrets : "";
        if (!secrets.empty()) e.credentials = sink::credentials_from_secret(e.url, secrets.substr(0, secrets.find(' ')));
    } else {
        e.url = row.url ? row.url : "";
        std::string_view secrets = row.secrets ? row.secrets : "";
        while (!secrets.empty()) {
            std::size_t space = secrets.find(' ');
            e.keys.push_back(core::SigningKey::parse(secrets.substr(0, space)));
            if (space == std::string_view::npos) break;
            secrets.remove_prefix(space + 1);
        }
        // Every HTTP endpoint but the default one is created with a secret
        // and keeps one through rotations. Without one it is being restored
        // (pg_restore loads endpoint_secrets after endpoints, in a
        // transaction of its own) or was changed by hand: its deliveries
        // wait rather than go out unsigned. The secrets' arrival changes the
        // endpoints version and the worker loads it again.
        if (e.held_unsigned()) e.enabled = false;
    }
    e.headers = split_header_lines(row.header_lines);
    e.retry = settings.retry;
    if (row.max_attempts > 0) e.retry.max_attempts = row.max_attempts;
    if (row.retry_base_ms > 0) e.retry.base = milliseconds(row.retry_base_ms);
    if (row.retry_max_ms > 0) e.retry.max = milliseconds(row.retry_max_ms);
    e.retry.max = std::max(e.retry.max, e.retry.base);
    e.rate_limit = row.rate_limit;
    e.max_in_flight = row.max_in_flight;
    if (row.timeout_ms > 0) e.timeout = milliseconds(row.timeout_ms);
    return e;
}

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

}  // namespace outbox::pg
