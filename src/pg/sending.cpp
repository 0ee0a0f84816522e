#include "pg/sending.hpp"

#include "core/outcome.hpp"
#include "core/retry.hpp"
#include "pg/guard.hpp"
#include "pg/limits.hpp"
#include "pg/log.hpp"
#include "pg/shmem.hpp"
#include "pg/stats.hpp"

extern "C" {
#include "utils/timestamp.h"
}

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <utility>

namespace outbox::pg {

Sending::Sending(int slot, const Settings& settings, Holdings& holdings, Scheduler& scheduler)
    : slot_(slot), settings_(settings), holdings_(holdings), scheduler_(scheduler), client_(settings.http),
      rng_(std::random_device{}()) {}

void Sending::perform() {
    client_.perform();
    sinks_.perform();
}

sink::Options Sending::sink_options() const {
    sink::Options options;
    options.allowed_networks = settings_.http.allowed_networks;
    options.ca_file = settings_.http.ca_file;
    options.connect_timeout = settings_.connect_timeout;
    options.max_reply = settings_.max_reply;
    return options;
}

void Sending::sync_sinks() {
    for (const auto& [id, error] : sinks_.sync(holdings_.endpoints, sink_options(), sink_options_version_))
        log_message(WARNING, fmt::format("outbox worker: endpoint \"{}\" cannot be delivered to: {}",
                                         holdings_.endpoints.at(id).name, error));
    // A protocol this library lacks: nothing is claimed for the endpoint (as if disabled here).
    for (const auto& [id, reason] : sinks_.unavailable()) holdings_.endpoints.at(id).enabled = false;
}

void Sending::reload() {
    client_.set_options(settings_.http);
    sink_options_version_++;  // the sinks are made again with the new settings
}

std::vector<int> Sending::fds() const {
    std::vector<int> fds{client_.fd()};
    for (int fd : sinks_.fds()) fds.push_back(fd);
    return fds;
}

std::chrono::milliseconds Sending::timeout(std::chrono::milliseconds timeout) const {
    if (auto http = client_.timeout()) timeout = std::min(timeout, *http);
    if (auto brokers = sinks_.timeout()) timeout = std::min(timeout, *brokers);
    return timeout;
}

// Starts claimed requests while there are free slots (each endpoint up
// to its share). A claim that can no longer be sent in time, or whose
// endpoint is paused, disabled or gone, is handed back (unsent).
void Sending::start_ready() {
    limits_wake_ = Clock::time_point::max();
    if (holdings_.ready.empty()) return;
    auto now = Clock::now();
    core::Share share = scheduler_.share();
    std::size_t max = static_cast<std::size_t>(settings_.max_in_flight);
    bool started = false;
    for (auto& [endpoint_id, queue] : holdings_.ready) {
        auto endpoint = holdings_.endpoints.find(endpoint_id);
        while (!queue.empty()) {
            Ready& r = queue.front();
            bool usable = endpoint != holdings_.endpoints.end() && Scheduler::sendable(endpoint->second, now) &&
                          now < r.start_by;
            if (usable) {
                Endpoint& e = endpoint->second;
                if (e.in_flight >= scheduler_.cap_of(e, share) || holdings_.in_flight.size() >= max) break;
                if (!scheduler_.admit(e, now)) {
                    limits_wake_ = std::min(limits_wake_, e.held_until);
                    break;
                }
                r.delivery.limited = e.limited();
                e.in_flight++;
                r.delivery.started_at = GetCurrentTimestamp();
                holdings_.in_flight.emplace(r.tag, std::move(r.delivery));
                if (r.message) sinks_.start(endpoint_id, std::move(*r.message));
                else client_.start(std::move(r.request));
                started = true;
            } else {
                holdings_.pipelines.hand_back(r.tag, holdings_.unsent);
                holdings_.unsent.push_back(std::move(r.delivery));
            }
            queue.pop_front();
        }
    }
    std::erase_if(holdings_.ready, [](const auto& entry) { return entry.second.empty(); });
    // Put them on the wire now: they travel while the worker is in its
    // next transaction, instead of waiting for the loop to come round.
    if (started) client_.perform();
}

// A broker's acknowledgement is a 200, its refusal the protocol's code, no
// answer 0 (docs/sinks.md), and each goes through the same decision as an
// HTTP response.
void Sending::collect_completed() {
    for (http::Response& response : client_.take_completed()) finish(std::move(response));
    for (sink::Outcome& outcome : sinks_.take_completed()) {
        http::Response response;
        response.tag = outcome.tag;
        response.status = outcome.acked ? 200 : outcome.status;
        response.error = std::move(outcome.error);
        response.refused = outcome.refused;
        response.duration = outcome.duration;
        finish(std::move(response));
    }
}

void Sending::finish(http::Response response) {
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    auto it = holdings_.in_flight.find(response.tag);
    if (it == holdings_.in_flight.end()) return;
    Finished f;
    f.delivery = std::move(it->second);
    holdings_.in_flight.erase(it);
    auto endpoint = holdings_.endpoints.find(f.delivery.endpoint_id);
    bool known = endpoint != holdings_.endpoints.end();
    if (known && endpoint->second.in_flight > 0) endpoint->second.in_flight--;
    if (f.delivery.limited) pg_call([&] { limits_finish(slot_, f.delivery.endpoint_id); });
    core::AttemptResult result;
    result.attempt = f.delivery.attempt;
    result.http_status = response.status;
    if (!response.retry_after.empty())
        result.retry_after = core::parse_retry_after(response.retry_after, std::chrono::system_clock::now());
    const core::RetryPolicy& policy = known ? endpoint->second.retry : settings_.retry;
    core::Decision decision = core::decide(policy, result, unit(rng_));
    switch (decision.outcome) {
        case core::Outcome::Delivered: f.state = "delivered"; break;
        case core::Outcome::Dead: f.state = "dead"; break;
        case core::Outcome::Retry: f.state = "pending"; f.retry_in_ms = decision.delay.count(); break;
        case core::Outcome::Gone:
            // The endpoint is gone: disable it; its deliveries wait
            // (pending) until it is enabled again.
            f.state = "pending";
            if (known) {
                endpoint->second.enabled = false;
                holdings_.results.gone[f.delivery.endpoint_id] =
                    fmt::format("410 Gone from {} at event {}", endpoint->second.url, f.delivery.event_id);
            }
            break;
    }
    // 429/503 with Retry-After: the whole endpoint waits, not just
    // this delivery.
    if ((response.status == 429 || response.status == 503) && result.retry_after && known) {
        auto wait = core::clamp_retry_after(policy, *result.retry_after);
        scheduler_.pause(endpoint->second, Clock::now() + wait);
        auto wait_us = std::chrono::duration_cast<std::chrono::microseconds>(wait).count();
        pg_call([&] { share_endpoint_pause(f.delivery.endpoint_id, GetCurrentTimestamp() + wait_us); });
    }
    f.status = static_cast<int32>(response.status);
    f.error = !response.error.empty() ? std::move(response.error)
              : (response.status >= 200 && response.status < 300) ? std::string()
              : fmt::format("HTTP {}", response.status);
    f.duration_us = response.duration.count();
    f.response = std::move(response.body);
    f.response_headers = std::move(response.headers);
    if (decision.outcome == core::Outcome::Dead)
        log_message(LOG, fmt::format("outbox: delivery of event {} to endpoint \"{}\" is dead after {} attempts: {}",
                                     f.delivery.event_id, known ? endpoint->second.name : "?",
                                     f.delivery.attempt, f.error));
    count_attempt(f, decision.outcome == core::Outcome::Delivered);
    // The next delivery of its key's pipeline goes at once, ahead of
    // other claims; after a failure to be retried, the rest goes back.
    bool go_on = decision.outcome == core::Outcome::Delivered || decision.outcome == core::Outcome::Dead;
    if (auto next = holdings_.pipelines.next(response.tag, go_on, holdings_.unsent))
        holdings_.ready[next->delivery.endpoint_id].push_front(std::move(*next));
    holdings_.results.add(std::move(f));
}

// Counts the attempt for outbox.stats; a change of its endpoint's health
// (failing, recovered) is told in the next transaction.
void Sending::count_attempt(const Finished& f, bool success) {
    TimestampTz now = GetCurrentTimestamp();
    int32 consecutive = 0;
    TimestampTz since = 0;
    core::HealthChange change = pg_call([&] {
        return count_endpoint_attempt(f.delivery.endpoint_id, success, now, now - f.delivery.created_at,
                                      &consecutive, &since);
    });
    if (change != core::HealthChange::None)
        holdings_.results.health.push_back(HealthNote{f.delivery.endpoint_id, change == core::HealthChange::Failing,
                                                      since, consecutive, f.error});
}

void Sending::publish_in_flight_counts() {
    for (auto& [id, published] : published_in_flight_) {
        auto endpoint = holdings_.endpoints.find(id);
        if (endpoint == holdings_.endpoints.end() && published != 0) {
            pg_call([&, id = id] { publish_in_flight(slot_, id, 0); });
            published = 0;
        }
    }
    for (const auto& [id, e] : holdings_.endpoints) {
        int32 n = static_cast<int32>(e.in_flight + holdings_.ready_of(id) + holdings_.pipelines.held_of(id));
        int32& published = published_in_flight_[id];
        if (n == published) continue;
        pg_call([&, id = id] { publish_in_flight(slot_, id, n); });
        published = n;
    }
}

}  // namespace outbox::pg
