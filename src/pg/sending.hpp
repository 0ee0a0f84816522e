// Requests and publishes: starts claimed deliveries when a request slot is
// free, and turns what comes back into results to record. Owns the HTTP
// client and the broker sinks (sinks.hpp: deliveries to nats://, amqp://,
// redis:// endpoints are published through them and decided like HTTP
// responses); decides each outcome (core/outcome.hpp), counts it for
// outbox.stats, and keeps a key's pipeline going. The loop waits on fds()
// at most timeout().
#pragma once

extern "C" {
#include "postgres.h"
}

#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "http/client.hpp"
#include "pg/holdings.hpp"
#include "pg/scheduler.hpp"
#include "pg/settings.hpp"
#include "pg/sinks.hpp"

namespace outbox::pg {

class Sending {
public:
    Sending(int slot, const Settings& settings, Holdings& holdings, Scheduler& scheduler);

    // Moves HTTP transfers and broker publishes on, without blocking.
    void perform();
    // Finished requests and broker messages become results (holdings.results).
    void collect_completed();
    // Starts ready requests while there are free slots.
    void start_ready();
    // How many requests each endpoint has claimed and not finished, for
    // outbox.stats (in_flight), told when it changes.
    void publish_in_flight_counts();

    // Brings the broker sinks in line with the endpoints just loaded.
    void sync_sinks();
    // Endpoints of a protocol this library lacks (BrokerSinks::unavailable()):
    // sync_sinks() leaves them disabled in this worker, so nothing is claimed for them.
    const std::map<int32, std::string>& unavailable() const { return sinks_.unavailable(); }
    // The settings were reloaded: the HTTP client takes the new ones, and
    // the sinks are made again with them.
    void reload();

    // The HTTP client's descriptor, then each broker sink's.
    std::vector<int> fds() const;
    // Whether fds() changed since the last call (the wait set must be made again).
    bool take_fds_changed() { return sinks_.take_fds_changed(); }
    // `timeout`, or less if a transfer or a publish needs attention sooner.
    std::chrono::milliseconds timeout(std::chrono::milliseconds timeout) const;
    // When an endpoint held back by its limits may start again (start_ready()).
    Clock::time_point limits_wake() const { return limits_wake_; }

private:
    sink::Options sink_options() const;
    void finish(http::Response response);
    void count_attempt(const Finished& f, bool success);

    int slot_;
    const Settings& settings_;
    Holdings& holdings_;
    Scheduler& scheduler_;
    http::Client client_;
    BrokerSinks sinks_;
    std::uint64_t sink_options_version_ = 0;
    std::mt19937_64 rng_;
    std::map<int32, int32> published_in_flight_;
    Clock::time_point limits_wake_ = Clock::time_point::max();  // when a held endpoint may start again
};

}  // namespace outbox::pg
