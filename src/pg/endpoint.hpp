// An endpoint as the worker sends to it: its configuration as loaded from
// outbox.endpoints (with the outbox.* settings where it has none of its
// own), and what the worker keeps about it while it runs.
#pragma once

extern "C" {
#include "postgres.h"
}

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "core/headers.hpp"
#include "core/retry.hpp"
#include "core/signing.hpp"
#include "pg/queue.hpp"
#include "pg/settings.hpp"
#include "sink/sink.hpp"

namespace outbox::pg {

using Clock = std::chrono::steady_clock;

struct Endpoint {
    int32 id = 0;
    std::string name;
    std::string url;
    std::vector<core::SigningKey> keys;  // HTTP: signing keys
    bool broker = false;                 // a message broker (sinks.hpp), not HTTP
    sink::Credentials credentials;       // broker: from its newest secret
    std::vector<core::Header> headers;
    std::optional<std::chrono::milliseconds> timeout;
    bool enabled = true;
    core::RetryPolicy retry;  // the outbox.* settings, with the endpoint's own where it has them
    double rate_limit = 0;    // requests per second, all workers together; 0: none
    int32 max_in_flight = 0;  // requests at once, all workers together; 0: a fair share of this worker's
    // What the worker keeps while it runs (carried over when it reloads).
    Clock::time_point held_until{};    // a limit holds its requests back until then
    std::size_t in_flight = 0;
    Clock::time_point paused_until{};  // Retry-After from a 429/503

    // Whether it has a limit of its own (limits.hpp), and no fair share.
    bool limited() const { return rate_limit > 0 || max_in_flight > 0; }
    // An HTTP endpoint other than the default one without a secret: its
    // deliveries are held, not sent unsigned (endpoint_from_row).
    bool held_unsigned() const { return id != 0 && !broker && keys.empty(); }
};

// The endpoint of a row of load_endpoints(). The default endpoint (id 0)
// takes its URL and secret from the settings. Throws core::InvalidInput for
// a secret that cannot be used (the SQL functions refuse such secrets).
Endpoint endpoint_from_row(const EndpointRow& row, const Settings& settings);

// "name: value\n..." as produced by the worker's queries, back into pairs.
// Names and values were validated on the way in: no CR/LF, names are tokens.
std::vector<core::Header> split_header_lines(const char* lines);

}  // namespace outbox::pg
