#include "pg/undeliverable.hpp"

#include "pg/plan.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

namespace outbox::pg {

namespace {

// Deliveries are made with next_attempt_at = now() of the transaction that
// makes them (dispatch, replay, redrive), which may commit a while after:
// each look goes back this far before the previous one.
constexpr int64 kOverlapUs = 60 * USECS_PER_SEC;
constexpr int64 kLookEveryUs = 5 * USECS_PER_SEC;

constexpr const char* kMarkSql = R"sql(
UPDATE outbox.deliveries AS d
SET last_error = $2
WHERE d.endpoint_id = $1
  AND d.state = 'pending'
  AND d.next_attempt_at >= $3
  AND d.last_error IS DISTINCT FROM $2
)sql";

Plan mark_plan{kMarkSql, 3, {INT4OID, TEXTOID, TIMESTAMPTZOID}, nullptr};

}  // namespace

void Undeliverable::note(const std::map<int32, std::string>& unavailable) {
    std::erase_if(seen_, [&](const auto& entry) { return !unavailable.contains(entry.first); });
    if (unavailable.empty()) return;
    TimestampTz now = GetCurrentTimestamp();
    bool periodic = now >= next_look_;
    for (const auto& [id, reason] : unavailable) {
        Seen& seen = seen_[id];
        if (seen.reason != reason) {  // new, or another reason: every pending delivery
            seen.reason = reason;
            seen.looked_at = DT_NOBEGIN;
        } else if (!periodic) {
            continue;
        }
        TimestampTz since = seen.looked_at == DT_NOBEGIN ? DT_NOBEGIN : seen.looked_at - kOverlapUs;
        Datum values[3] = {Int32GetDatum(id), CStringGetTextDatum(reason.c_str()), TimestampTzGetDatum(since)};
        execute(mark_plan, values, nullptr, SPI_OK_UPDATE);
        seen.looked_at = now;
    }
    if (periodic) next_look_ = now + kLookEveryUs;
}

}  // namespace outbox::pg
