#include "pg/claiming.hpp"

#include "core/headers.hpp"
#include "pg/guard.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <string>
#include <unordered_map>

namespace outbox::pg {

namespace {

using std::chrono::milliseconds;

// A claim brings up to this many batches (outbox.batch_size) of deliveries
// behind its keyed heads (Pipelines): a hot key then needs one transaction
// per thousand events instead of one per event.
constexpr int kPipelineBatches = 10;

http::Request http_request(const Settings& settings, const Endpoint& endpoint, const ClaimedRow& row,
                           std::uint64_t tag, milliseconds request_timeout, int64_t timestamp) {
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
    in.user_agent = settings.http.user_agent;
    in.endpoint_headers = endpoint.headers;
    in.event_headers = event_headers;
    request.headers = core::build_request_headers(in);
    request.timeout = request_timeout;
    request.connect_timeout = std::min(settings.connect_timeout, request.timeout);
    return request;
}

// A broker gets the event id, topic, key, payload and the endpoint's and
// event's headers (docs/sinks.md: what each protocol makes of them).
sink::Message broker_message(const Endpoint& endpoint, const ClaimedRow& row, std::uint64_t tag,
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

}  // namespace

void Claimer::begin() {
    holdings_.claimed_pending = 0;
    claimed_pipelines_.clear();
}

// At a moderate rate that is most of the new deliveries, each without a
// claim's UPDATE.
int Claimer::dispatch_and_lease(int limit, const ClaimPlan& plan, std::vector<Ready>& claimed,
                                std::map<int32, int>& leased, int* left_due) {
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
    DispatchResult result;
    pg_call([&] {
        DispatchRequest request{limit, !settings_.url.empty(), lease_ms,
                                int4_array(endpoints.data(), static_cast<int>(endpoints.size())),
                                int4_array(limits.data(), static_cast<int>(limits.size()))};
        dispatch_events(request, query_cxt_, &result);
    });
    for (int i = 0; i < result.n_leased; i++) leased[result.leased[i].endpoint_id]++;
    holdings_.claimed_pending += static_cast<std::size_t>(adopt_claims(result.leased, result.n_leased, claimed));
    *left_due = result.left_due;
    return result.dispatched;
}

// How long claims of `e` are leased: the setting, or longer than its
// own time limit.
int Claimer::lease_ms_of(const Endpoint& e) const {
    return static_cast<int>(
        std::max(settings_.lease, e.timeout.value_or(milliseconds(0)) + std::chrono::seconds(5)).count());
}

int Claimer::claim_into(int32 endpoint_id, int limit, std::vector<Ready>& claimed) {
    const Endpoint& endpoint = holdings_.endpoints.at(endpoint_id);
    ClaimedRow* rows = nullptr;
    int followers = endpoint.limited()
                        ? static_cast<int>(scheduler_.claim_window_of(endpoint, scheduler_.share()))
                        : settings_.batch_size * kPipelineBatches;
    int n = pg_call([&] {
        return claim_deliveries(endpoint_id, limit, lease_ms_of(endpoint), followers, query_cxt_, &rows);
    });
    int got = adopt_claims(rows, n, claimed);
    holdings_.claimed_pending += static_cast<std::size_t>(got);
    return got;
}

// Builds the requests of claimed deliveries (rows in seq order, from
// claim() or dispatch_and_lease()): a key's first row is its head, to be
// started like any claim; the others follow it (Pipelines). Returns how
// many went to `claimed`.
int Claimer::adopt_claims(const ClaimedRow* rows, int n, std::vector<Ready>& claimed) {
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
                    InFlight{row.event_id, row.event_uuid, row.endpoint_id, row.attempt, row.created_at}, start_by};
        if (endpoint.broker) ready.message = broker_message(endpoint, row, ready.tag, request_timeout);
        else ready.request = http_request(settings_, endpoint, row, ready.tag, request_timeout, timestamp);
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

void Claimer::hand_over(std::vector<Ready>& claimed) {
    for (Ready& r : claimed) {
        holdings_.ready[r.delivery.endpoint_id].push_back(std::move(r));
    }
    for (auto& [tag, rest] : claimed_pipelines_) holdings_.pipelines.attach(tag, std::move(rest));
    claimed_pipelines_.clear();
}

}  // namespace outbox::pg
