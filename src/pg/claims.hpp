// What the worker holds for a claimed delivery: waiting for a request slot
// (Ready), on the wire (InFlight), and the pipelines that follow keyed ones.
#pragma once

extern "C" {
#include "postgres.h"
#include "datatype/timestamp.h"
#include "utils/uuid.h"
}

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/client.hpp"
#include "sink/sink.hpp"
#include "pg/endpoint.hpp"

namespace outbox::pg {

struct InFlight {
    std::string event_id;
    pg_uuid_t uuid;  // the same, as the statements take it
    int32 endpoint_id;
    int32 attempt;
    TimestampTz created_at;  // the delivery's, just after its event's commit
    TimestampTz started_at = 0;  // when its request started
    bool limited = false;        // counted by limits_try_start(): limits_finish() when done
    bool keyed = false;          // its result may let a parked delivery of its key go
};

// A claimed delivery whose request (or broker message) is built but not
// started. The worker
// claims up to a batch ahead of its free request slots, so that a slot is
// refilled the moment its request finishes, not after the next database
// round trip, and requests are on the wire while the worker is in SQL.
struct Ready {
    std::uint64_t tag = 0;          // its request's or message's
    http::Request request;          // to an HTTP endpoint
    std::optional<sink::Message> message;  // to a broker endpoint (pg/sinks.hpp) instead
    InFlight delivery;
    Clock::time_point start_by;  // later, it is handed back: the lease must cover the wait and the request
};

// Key pipelines. outbox.claim() hands a keyed delivery over together with
// the deliveries that follow it in its key, all leased; each is held here,
// behind the request of its predecessor, and becomes ready the moment that
// request is delivered (or dead), with no database round trip in between.
// This is what lets one key's stream go at the speed of its endpoint
// instead of one transaction per event, while a key still has at most one
// request on the wire. When a request will be retried, or cannot be sent,
// the deliveries behind it are handed back (parked again, see
// release_claims()).
class Pipelines {
public:
    // `rest` follows the request tagged `tag`, in key order.
    void attach(std::uint64_t tag, std::deque<Ready> rest);

    // The request `tag` finished. `go_on`: delivered or dead, so that its
    // successor may be sent; it is returned (its own rest follows it now).
    // Otherwise the rest is added to `handed_back`.
    std::optional<Ready> next(std::uint64_t tag, bool go_on, std::vector<InFlight>& handed_back);

    // The deliveries behind `tag` (which is not going to be sent) go back.
    void hand_back(std::uint64_t tag, std::vector<InFlight>& handed_back);
    void hand_back_all(std::vector<InFlight>& handed_back);

    // Deliveries held behind other requests, per endpoint (for outbox.stats).
    std::size_t held_of(int32 endpoint_id) const;
    bool empty() const { return rest_.empty(); }

private:
    std::unordered_map<std::uint64_t, std::deque<Ready>> rest_;
};

}  // namespace outbox::pg
