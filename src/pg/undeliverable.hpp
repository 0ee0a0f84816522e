// Deliveries the worker cannot make: those of an endpoint whose protocol
// this build of the library lacks (BrokerSinks::unavailable(), after a
// restore or an upgrade into a server built without that broker's client
// library). Nothing claims them, so they stay pending with their attempts
// untouched and nothing is lost; their last_error says why, so that
// outbox.deliveries and endpoint_status show it.
#pragma once

extern "C" {
#include "postgres.h"

#include "datatype/timestamp.h"
}

#include <map>
#include <string>

namespace outbox::pg {

class Undeliverable {
public:
    // Called by one worker in its transaction, with the unavailable
    // endpoints. Sets last_error of their pending deliveries that do not
    // say it yet: all of an endpoint's at first, then, every few seconds,
    // those made since about the previous look (an index range of
    // deliveries_due), so that a large backlog is not read again and again.
    // Calls PostgreSQL: run it through pg_call.
    void note(const std::map<int32, std::string>& unavailable);

private:
    struct Seen {
        std::string reason;
        TimestampTz looked_at = 0;  // the statement time of the last look
    };
    std::map<int32, Seen> seen_;
    TimestampTz next_look_ = 0;
};

}  // namespace outbox::pg
