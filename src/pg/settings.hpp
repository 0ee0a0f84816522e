// The worker's copy of the outbox.* settings, as C++ values. Taken at start
// and after every SIGHUP, so the delivery code never reads GUC globals.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "core/retry.hpp"
#include "core/signing.hpp"
#include "http/client.hpp"

namespace outbox::pg {

struct Settings {
    bool paused = false;
    std::string url;                       // default endpoint; empty: not configured
    std::vector<core::SigningKey> keys;    // default endpoint's signing keys
    http::Options http;
    core::RetryPolicy retry;
    int batch_size = 100;
    int max_in_flight = 64;
    std::chrono::milliseconds request_timeout{30000};
    std::chrono::milliseconds connect_timeout{10000};
    std::size_t max_reply = 64 * 1024;      // what a broker connection may hold of a reply
    std::chrono::milliseconds poll_interval{1000};
    std::chrono::milliseconds lease{60000};
    long long retention_s = 86400;
    long long dead_retention_s = 7 * 86400;
    long long attempt_retention_s = 7 * 86400;
    std::string channel;
};

// Reads the current GUC values. Throws core::InvalidInput if one cannot be
// used (the GUC check hooks make that rare).
Settings load_settings();

}  // namespace outbox::pg
